// Package authority is a project's membership authority, run by the hub: it keeps the
// members (identifier -> attributes), the one-time enrollment tickets and the revocations of
// deleted members (kept until their last credential has expired, so that a restarted hub still
// refuses them), issues members short-lived credentials, and signs the events that announce
// revocations to members (control/event).
//
// store.go is the contract for the authority's storage (Store, with the Member, Ticket and
// Revocation records and the errors every implementation returns); the implementations live in
// subpackages so that a program links only the driver it uses: sqlitestore (an embedded
// SQLite file, the default) and pgstore (PostgreSQL, for hubs that share one member store).
// storetest is the conformance suite both pass.
//
// Tickets are bearer secrets, so they are bounded: at most MaxTicketUses uses and
// MaxTicketExpiry of life, their relay name and attributes checked when they are made by the
// rules that apply when they are used, and a ticket dies with its maker: deleting a member
// deletes its tickets, and a ticket whose maker is no longer an enroller is refused. A
// ticket also dies with the member that enrolled with it: each member records the hash of
// the ticket it redeemed, and deleting it takes that ticket's remaining uses, so the member
// cannot enroll again with it under a fresh identity (nor can others it was shared with).
//
// The package does not speak to the network or decide policy: the node serves enrollment and
// refresh requests over secure channels, and control/policy decides what attributes admit.
package authority
