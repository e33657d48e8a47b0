package routing

import "slices"

// FlowID names a flow: a transport connection, a secure channel, or a listener that spawns
// them. Every message that did not start on this node carries the flow it arrived on (and
// the flow's spawner) in Local, and reaches only workers opened to one of the two.
type FlowID uint64

// Well-known flows.
const (
	// FlowLocal marks a message a worker of this node sent; it may reach any worker.
	FlowLocal FlowID = 0
	// FlowTransports is the spawner of every transport connection: a worker opened to it
	// accepts messages straight off any connection, before any authentication.
	FlowTransports FlowID = 1
)

// admits reports whether a message with local metadata l may reach a worker opened to flows.
func admits(flows []FlowID, l *Local) bool {
	if l.Flow == FlowLocal {
		return true
	}
	return slices.Contains(flows, l.Flow) || (l.Spawner != FlowLocal && slices.Contains(flows, l.Spawner))
}
