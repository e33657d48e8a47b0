// Package securechannel implements Noise_XX_25519_AESGCM_SHA256 channels: the handshake,
// transport encryption with an explicit 8-byte counter per message and a sliding replay
// window, so messages may arrive reordered, and Noise REKEY on a message, byte and time
// schedule, with a re-handshake asked for long before counters run out. A Listener admits
// first handshake messages fairly per origin, each at a bounded rate, and under load answers
// those of unproven senders with a stateless cookie instead of any Diffie–Hellman.
//
// It knows nothing of identities or credentials: the handshake payloads that carry them are
// opaque here and are checked by an interface implemented elsewhere (Authenticator). Another
// (Admitter) caps a listener's channels per peer (and may close older ones: it is told each
// channel's origin) and tells members from strangers: a
// stranger's channel reaches only the workers opened to the listener's StrangerFlow, leaves
// its link's pre-authentication caps in place, and closes after StrangerTimeout.
package securechannel
