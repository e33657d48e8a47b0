// Package node is the node runtime: the daemon that owns one home, its router and
// transports, and the local API the CLI talks to; and the helpers the CLI uses to find,
// start in the background and stop that daemon. Under a service manager (systemd's
// Type=notify) the daemon reports readiness, watchdog pings and stopping on $NOTIFY_SOCKET.
//
// Data flows in from the CLI over the Unix socket (api package types), and out as routed
// messages through the router; state the node must remember goes to the state database.
//
// What remote peers can make the node hold is capped per identity (Caps, admission.go): its
// listener's channels, and at a hub the channels of strangers (identities without a valid
// credential of the project, which reach only the authority and are closed if they do not
// become members) and the relays each member holds.
//
// Creating an inlet checks its path once (portals.go, checkInlet): the channels, the relay
// and the outlet's answer to a check, and fails with the first refusal and what to do,
// unless the request says NoWait. Refusals of a path (a relay or node refusing a handshake,
// a router without the service, the inlet's own policy) reach the inlet as
// dataplane.ErrRefused, which counts them and keeps the last for list and status.
package node
