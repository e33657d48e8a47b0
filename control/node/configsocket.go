package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/control/config"
)

// peerGroups returns the supplementary groups of the process at the other end of a unix
// socket (SO_PEERGROUPS, Linux 4.13), or nil. (unix.GetsockoptString would cut the last
// byte, taking it for a NUL.)
func peerGroups(fd int) []uint32 {
	for n := 64; n <= 65536; n *= 4 {
		buf := make([]uint32, n)
		size := uint32(4 * n)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0)
		switch errno {
		case 0:
			return buf[:size/4]
		case unix.ERANGE:
			continue
		default:
			return nil
		}
	}
	return nil
}

// applySocketGroup opens the API socket to the config's api_socket group: mode 0660 and
// that group, and the socket's directory must let the group in (the unit's RuntimeDirectory
// is 0750 and the service's group). Without a group the socket is the owner's alone.
func (n *Node) applySocketGroup() error {
	path := n.cfg.Home.Socket()
	group := ""
	if c := n.config.owned(); c != nil {
		group = c.APISocket.Group
	}
	if group == "" {
		n.apiGroup.Store(-1)
		return os.Chmod(path, 0o600)
	}
	gid, err := config.LookupGroup(group)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("node: API socket: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) != gid {
		// Without root this needs the node to be in the group; the unit's Group= makes the
		// socket the group's without this call (chown is outside its system call filter).
		if err := os.Chown(path, -1, gid); err != nil {
			return fmt.Errorf("node: api_socket: give the socket to group %s: %w; run the node with that group (the unit's Group=) or as root", group, err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return fmt.Errorf("node: API socket: %w", err)
	}
	n.apiGroup.Store(int64(gid))
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err == nil {
		st, _ := di.Sys().(*syscall.Stat_t)
		if di.Mode().Perm()&0o010 == 0 || (st != nil && int(st.Gid) != gid && di.Mode().Perm()&0o001 == 0) {
			n.log.Warn("the API socket's directory does not let the socket's group in", "dir", dir, "mode", fmt.Sprintf("%04o", di.Mode().Perm()), "group", group,
				"fix", fmt.Sprintf("chgrp %s %s && chmod 0750 %s", group, dir, dir))
		}
	}
	return nil
}

// configHandlers serve the config's API: reload and the effective state.
func (n *Node) configHandlers(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/config/reload", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Minute) // not the request's: a reload runs to its end
		defer cancel()
		res, err := n.config.reload(ctx)
		if err == nil {
			err = n.applySocketGroup()
		}
		if err != nil && len(res.Created)+len(res.Deleted)+len(res.Replaced)+len(res.Errors) > 0 {
			reply(w, res, nil) // applied in part: the client prints what failed
			return
		}
		reply(w, res, err)
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		c, err := n.config.effective(r.Context())
		reply(w, c, err)
	})
}
