// Package event is the authority's signed announcements to the members of a project: for
// now, that a member was revoked and must be refused until a given time.
//
// A member acts on an event only because it verifies: signed by the project authority's
// credential-signing key, attested by the authority's identity (the one the member enrolled
// with), for the member's project, and fresh. Which channel or relay the event came through
// says nothing about its origin, so Verify does not look at it.
//
// The package encodes, decodes, signs and verifies events. It does not send them (the hub's
// node does, to members only) or keep revocations (control/authority stores them).
package event
