// Package state is a node's durable state: an embedded SQLite database (pure Go,
// modernc.org/sqlite) in the node's home, created with mode 0600 and migrated forward on open.
// Each table has typed accessors here; nothing outside this package writes SQL.
//
// It stores what the node must remember across restarts (settings, and in later layers its
// portals, relays, policies and project membership); it holds no private keys (those are
// the vault's).
package state
