// Package node is the node runtime: the daemon that owns one home, its router and
// transports, and the local API the CLI talks to; and the helpers the CLI uses to find,
// start in the background and stop that daemon. Under a service manager (systemd's
// Type=notify) the daemon reports readiness, watchdog pings and stopping on $NOTIFY_SOCKET.
//
// The node wires roles that are types of their own: the hub's services to members, the
// authority and the relays, are in control/hub (the node registers them behind its
// listener and lends them its table of revoked members, its channels and its counters);
// a member's session with its hub is control/member's Session (the node gives it the way
// to connect and what to do on each new channel). The live inlets, outlets and transparent
// inlets are the portal registry (portals.go, type portals, with its portalsConfig): the
// node checks API and config requests and keeps the records in its state database; the
// registry runs the portals on the router, lists them, re-checks their live sessions
// against their policies and hands their counters to the metrics collector. It reaches the
// node only through its config (policies, revocation, building a path, counting refusals).
//
// Data flows in from the CLI over the Unix socket (api package types), and out as routed
// messages through the router; state the node must remember goes to the state database.
//
// A node run with a config file (Config.ConfigFile, control/config) applies it at start, on
// Config.Reload (SIGHUP) and on POST /v1/config/reload (configapply.go): the difference to
// the file applied last becomes the ordinary create and delete calls, and what the file owns
// is remembered in the state database, so a reload never deletes what the CLI made and status
// marks the file's resources (origin "config"). The file's api_socket group may use the API
// socket (mode 0660; the peer's groups from SO_PEERGROUPS).
//
// What remote peers can make the node hold is capped per identity (Caps, admission.go): its
// listener's channels, and at a hub the channels of strangers (identities without a valid
// credential of the project, which reach only the authority and are closed if they do not
// become members; capped per origin too, the origin holding the most giving up its oldest
// when the pool is full) and the relays each member holds.
//
// With Config.Metrics the node serves Prometheus metrics (metrics.go): a collector that
// reads, at scrape time, the counters the node and its packages keep anyway, and the few
// the node keeps itself (counts.go: handshakes by role and outcome, refusals by reason).
//
// Creating an inlet checks its path once (portals.go, checkInlet): the channels, the relay
// and the outlet's answer to a check, and fails with the first refusal and what to do,
// unless the request says NoWait. Refusals of a path (a relay or node refusing a handshake,
// a router without the service, the inlet's own policy) reach the inlet as
// dataplane.ErrRefused, which counts them and keeps the last for list and status.
package node
