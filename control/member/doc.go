// Package member holds a member node's role in its project: its session with the hub
// (Session), which keeps one secure channel to the hub up (reconnecting with jittered
// exponential backoff), runs the node's hook each time it comes up, registers again the
// relays the member holds, and carries the member's requests to the hub's services
// (control/hub): fresh credentials, the revocations in force, relays, tickets and members.
//
// The node (control/node) wires it: it gives the session the way to connect (its resolver,
// which verifies the authority's identity), what to do when the channel comes up, and the
// relay names it holds; it checks the credentials the session brings back and decides when
// to refresh (the refresh loop is shared with the hub, which renews its own).
package member
