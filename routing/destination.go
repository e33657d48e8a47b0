package routing

// Destination is where a worker sends, and how it knows the answers: the route to the far
// worker, the flow its answers arrive on (which the sender opens its own worker to), and the
// link they travel over (nil inside the node). The node builds one when it resolves a route
// (a transport connection, then secure channels over it); secure channels, RPC calls and
// portal paths take one.
type Destination struct {
	Route Route
	Flow  FlowID
	Link  Link
}

// Through returns the destination of the connection or channel c itself: a message routed
// to it reaches, on the peer's node, the worker at the rest of its route.
func Through(c Connection) Destination {
	return Destination{Route: MustRoute(c.Address()), Flow: c.Flow(), Link: c}
}

// Worker returns d extended to the worker name at its far end. name must be a valid worker
// name and d short enough to take it (a name the code knows, a destination of a few hops):
// Worker panics otherwise, as MustRoute does. Route.Append is for names from elsewhere.
func (d Destination) Worker(name string) Destination {
	if err := d.Route.Append(LocalAddress(name)); err != nil {
		panic(err)
	}
	return d
}
