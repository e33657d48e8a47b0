package node

import (
	"strings"

	"github.com/adjacentnet/adjacent/routing"
)

// handshakeOrigin names the origin of a first handshake message at this node's listener
// (securechannel.Config.Origin), for the listener's fairness and cookies. Every handshake
// relayed to this node comes out of its one channel to the hub, with the return route
// [that channel, forward_to_NAME, the client's channel at the hub, ...hops the client
// chose]: this node's decryptor pushed the first hop, the hub's relay the second and the
// hub's end of the client's channel the third. So those three name the relay client, and a
// client cannot pose as many by varying the rest. Anything else gets the listener's
// default: the source address over TCP, the link otherwise.
func (n *Node) handshakeOrigin(m *routing.Message) string {
	hub := n.hubChannel()
	if hub == nil || m.Local.Link != routing.Link(hub) || m.Return.Len() < 3 {
		return ""
	}
	r := m.Return
	own := r.NextAddress()
	r.Pop()
	relay := r.NextAddress()
	r.Pop()
	client := r.NextAddress()
	if relay.Type != routing.TypeLocal || !strings.HasPrefix(relay.Value, relayPrefix) || client.Type != routing.TypeLocal {
		return ""
	}
	return own.Value + " " + relay.Value + " " + client.Value
}
