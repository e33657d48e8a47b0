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
// The roles inside this package, each a type with a config of the parts of the node it
// reads and calls (wireRoles in node.go makes them; Node keeps construction, start and
// stop, and the API calls that delegate to them):
//
//   - membership (project.go): the project the node is in, if any, and what trust reads off
//     it: the authority, the credential, the revoked members, the channel to the hub. From
//     the state database (loadProject), project create and enroll.
//   - credentialKeeper (credentials.go): renews the node's credential at half its lifetime
//     and at the hub's word, presents it on every channel, closes channels of expired or
//     revoked peers. Reads the project and the channels; stores the credential.
//   - revocations (revocation.go): acts on the control events the authority signs,
//     fetches the revocations in force from the hub, enforces them, refuses and counts
//     messages of revoked members. Fed by the events worker and the member's session.
//   - histories and rotator (rotate.go): the rotated identities of peers and the authority
//     the node knows (trust.Config's Known and Learn), and the rotation of an identity key
//     with what follows it (new static key, re-attested channels, a hub's signing key).
//   - identityStore (identity.go, identities.go): the home's identities, records in the
//     state database and keys in the vault.
//   - configApplier (configapply.go): the declarative config, turned into the node's
//     create and delete calls (configTarget).
//   - policies (policies.go) and recheck (livepolicy.go): the policy table, and the
//     re-check of live portal sessions against it.
//   - admission (admission.go): the listener's caps per identity and origin
//     (internal/fairshare's rule for the strangers' pool).
//   - serveMetrics and collector (metrics.go): Prometheus text from metricsSources, the
//     counters the node and its packages keep.
//   - portals (portals.go): the live inlets, outlets and transparent inlets (below).
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
