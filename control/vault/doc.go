// Package vault keeps a node's private keys: Ed25519 keys for identities and signing, and
// X25519 keys for Noise static keys. A vault is one directory, mode 0700, with one file per
// key, mode 0600, each written atomically; Open refuses a vault that group or others can
// get into, and never follows a symbolic link inside it.
//
// Private keys stay inside: an Ed25519Key signs (it satisfies identity.Signer) but never
// hands out its private bytes, and both key types redact themselves when printed or logged.
// The one exception is X25519Key.DH, which exists because the Noise library needs the raw
// static key.
//
// The vault is not an HSM or a keyring daemon: it does not encrypt keys at rest, lock memory,
// or protect against the vault's owner or root; file permissions are its boundary, so it
// assumes POSIX permissions.
package vault
