// Package fairshare holds the places that origins of work take (unauthenticated
// connections by source address, pending handshakes by origin, strangers' channels by
// origin) under a cap per origin and a cap in all, and states once the rule for a full
// table: the origin holding the most gives up its oldest place. So a flooding origin
// competes with itself, and an origin that has not been asking always gets in.
//
// A Table decides and keeps; it closes nothing and counts nothing. Its callers hold their
// own lock around it, choose which of the giver's places goes (the oldest, or the oldest
// of a kind), and say what happens to it. It is not a rate limiter: how often an origin
// may ask is its callers' business (securechannel's token buckets, for one).
package fairshare
