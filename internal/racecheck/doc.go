// Package racecheck tells tests whether the race detector is on: under it sync.Pool drops
// items on purpose, so tests that pin zero allocations skip.
package racecheck
