package routing

import "fmt"

// ReplyRoute returns the route back to m's sender, for a worker that answers m, or keeps
// sending to its sender, as itself: with a local message, which flow control lets reach
// anything. That is safe only because the answer goes back the way m came. A local m's return
// route is this node's own business; a remote m's must start at the link it came over (the
// connection or channel, which pushed its own address there), else m reached the worker by
// some other path and gets no answer (ErrNotBack).
func (m *Message) ReplyRoute() (Route, error) {
	if m.Local.Flow == FlowLocal {
		return m.Return, nil
	}
	t, v, _ := m.Return.Next()
	if !m.Local.cameBy(t, v) {
		return Route{}, fmt.Errorf("routing: reply to %s: %w", m.Return.String(), ErrNotBack)
	}
	return m.Return, nil
}

// Reply turns m around into an answer from the worker at from: its onward route becomes its
// ReplyRoute, its return route from alone, and it is a local message from now on. It is the
// one way a worker turns a remote message into a local one.
func (m *Message) Reply(from Address) error {
	back, err := m.ReplyRoute()
	if err != nil {
		return err
	}
	m.Onward = back
	m.Return.Reset()
	m.Local = Local{}
	return m.Return.Push(from)
}

// cameBy reports whether (t, v) is the address of the link l's message arrived over.
func (l *Local) cameBy(t Type, v []byte) bool {
	if l.Link == nil {
		return false
	}
	a := l.Link.Address()
	return t == a.Type && a.Value != "" && string(v) == a.Value
}
