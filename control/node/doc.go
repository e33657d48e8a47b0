// Package node is the node runtime: the daemon that owns one home, its router and
// transports, and the local API the CLI talks to; and the helpers the CLI uses to find,
// start in the background and stop that daemon. Under a service manager (systemd's
// Type=notify) the daemon reports readiness, watchdog pings and stopping on $NOTIFY_SOCKET.
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
// become members) and the relays each member holds.
package node
