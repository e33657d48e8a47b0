// Package backoff spaces the attempts at something that keeps failing (a dial, an accept,
// reaching the hub) with jittered exponential backoff, so that a loop does not spin and many
// nodes cut off by one outage do not come back in lockstep.
//
// It only computes delays; the caller counts failures and waits (with its own context).
package backoff
