// Package hosts keeps the node's managed block in a hosts file (/etc/hosts by default): the
// names of transparent inlets and the virtual addresses they were given, between
// "# BEGIN adjacent" and "# END adjacent". Everything outside the block is left as it was.
// Files are rewritten atomically (a temporary file renamed over the old one), or in place
// where the file is a mount point that cannot be replaced (as /etc/hosts in a container).
//
// It also picks free addresses for names from a private range (DefaultRange). It does not
// resolve names; the system resolver reads the file.
package hosts
