// Package hosts keeps the node's managed block in a hosts file (/etc/hosts by default): the
// names of transparent inlets and the virtual addresses they were given, between
// "# BEGIN adjacent" and "# END adjacent". Everything outside the block is left as it was.
// An update holds an advisory lock (flock) on the file, for nodes of several homes on one
// machine. Files are rewritten atomically (a temporary file with the old one's mode, owner and
// group, renamed over it), or in place where that cannot be done: a directory the node may not
// write (the system service, which runs unprivileged and may write /etc/hosts itself only
// because `adjacent service install` gives its group write access to the file), a mount point
// (as /etc/hosts in a container or under the unit's ReadWritePaths=). A file the node may not
// write either way is refused with the fix.
//
// It also picks free addresses for names from a private range (DefaultRange). It does not
// resolve names; the system resolver reads the file.
package hosts
