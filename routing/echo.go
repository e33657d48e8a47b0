package routing

// Echo is a worker that sends every message back along its return route, payload unchanged.
type Echo struct {
	router *Router
	self   Address
}

// NewEcho returns an echo worker that will answer from the local address name.
func NewEcho(r *Router, name string) *Echo { return &Echo{router: r, self: LocalAddress(name)} }

// HandleMessage replies with m's payload, back the way m came.
func (e *Echo) HandleMessage(m *Message) { e.router.Reply(m, e.self) }
