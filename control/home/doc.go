// Package home is the layout of a node's home directory: one node per home, holding its
// vault, state database, API socket, lock, pid and log. It resolves which home a command
// means (--home, then ADJACENT_HOME, then ~/.adjacent) and creates it private (0700),
// refusing one that group or others can read, or where a symbolic link sits at a path the
// node writes, and it opens the node's files without following links, so that nothing the
// node writes lands outside its home. The API socket may live outside the home (--socket,
// as the system service keeps it in /run/adjacent), in a directory only the node's user
// can write.
//
// It knows paths and permissions, nothing about what the files contain.
package home
