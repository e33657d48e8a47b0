package main

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adjacentnet/adjacent/control/hosts"
	"github.com/adjacentnet/adjacent/dist"
	"github.com/adjacentnet/adjacent/internal/netns"
)

// serviceUID is the unprivileged user (and group) the least-privilege test runs nodes as; no
// account needs to exist for it.
const serviceUID = 61234

// unprivileged runs commands in a namespace as serviceUID holding only the given capabilities,
// as the unit's User=, AmbientCapabilities=, CapabilityBoundingSet= and NoNewPrivileges= do.
type unprivileged struct {
	t    *testing.T
	bin  string // holds adjacent, readable by the user
	ns   *netns.NS
	caps string   // e.g. "+net_admin,+net_raw"; "" for none
	wrap []string // a command that runs setpriv, e.g. strace
}

// openTun gives the commands, in their own mount namespace (ip netns exec makes one), a
// /dev/net/tun that everyone may open, as Debian's udev rules make it (mode 0666); some
// machines and containers, this test's among them, keep it root's (0600), which no
// capability overrides. The host's device node is left alone.
const openTun = `mount -t tmpfs -o mode=0755,size=64k adjacent-test /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"`

func (u *unprivileged) command(env []string, args ...string) *exec.Cmd {
	caps := "-all"
	if u.caps != "" {
		caps += "," + u.caps
	}
	uid := strconv.Itoa(serviceUID)
	line := append([]string{"-c", openTun, "sh"}, u.wrap...)
	line = append(line, "setpriv", "--reuid", uid, "--regid", uid, "--clear-groups",
		"--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", caps, "--no-new-privs",
		filepath.Join(u.bin, "adjacent"))
	cmd := u.ns.Command("sh", append(line, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// adj runs the CLI on home and returns its output; it fails the test on error.
func (u *unprivileged) adj(home string, args ...string) string {
	u.t.Helper()
	out, err := u.try(home, args...)
	if err != nil {
		u.t.Fatalf("adjacent %s (uid %d, caps %q): %v", strings.Join(args, " "), serviceUID, u.caps, err)
	}
	return out
}

func (u *unprivileged) try(home string, args ...string) (string, error) {
	cmd := u.command(nil, append([]string{"--home", home}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ownedDir makes dir with mode, owned by serviceUID.
func ownedDir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, serviceUID, serviceUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLeastPrivilege runs the story's nodes in a network namespace as an unprivileged user
// holding only CAP_NET_ADMIN and CAP_NET_RAW, as the shipped unit does; the inlet node runs
// with the unit's own ExecStart= arguments, its home and API socket in directories like the
// unit's StateDirectory= and RuntimeDirectory=; it reports READY=1, WATCHDOG=1 and, at
// SIGTERM, STOPPING=1 on $NOTIFY_SOCKET. A classic inlet, an outlet and a transparent inlet on
// an IP address carry a byte stream; so does one with a host name, written in place into a
// root-owned hosts file in a root-owned directory that is granted to the node's group as
// `adjacent service install` grants /etc/hosts, through which a client resolves it; once that
// file is replaced, the node refuses the next name and says what to do; nothing in any home is readable by others; a node without
// CAP_NET_ADMIN refuses a --tun inlet, naming the capability; and (under strace) the inlet
// node calls nothing the unit's SystemCallFilter= denies.
func TestLeastPrivilege(t *testing.T) {
	netns.Require(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (Debian package util-linux)")
	}
	bin, err := tools()
	if err != nil {
		t.Fatal(err)
	}
	// Homes under a directory the unprivileged user can traverse (t.TempDir's parent is
	// root's, 0700), each owned by that user, 0700, as StateDirectory= makes it.
	base, err := os.MkdirTemp("", "adjacent-service-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	// The binary too: the tools directory is root's, 0700.
	exe, err := os.ReadFile(filepath.Join(bin, "adjacent"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "adjacent"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := netns.New(t, "svc")
	// A source address for the clients of the transparent inlet, as the story's veth gives.
	ns.Run("ip", "addr", "add", "10.98.0.2/32", "dev", "lo")
	u := &unprivileged{t: t, bin: base, ns: ns, caps: "+net_admin,+net_raw"}
	hubHome, bankHome := ownedDir(t, filepath.Join(base, "hub"), 0o700), ownedDir(t, filepath.Join(base, "bank"), 0o700)
	for _, h := range []string{hubHome, bankHome} {
		t.Cleanup(func() { u.try(h, "node", "stop") })
	}
	go func() {
		cmd := ns.Command(filepath.Join(bin, "blast"), "serve", "-listen", "127.0.0.1:7000")
		cmd.Run() // ends with the namespace
	}()

	u.adj(hubHome, "project", "create", "acme", "--listen", "127.0.0.1:4000", "--public-address", "127.0.0.1:4000")
	bankTicket := strings.TrimSpace(u.adj(hubHome, "project", "ticket", "--relay", "blast"))
	analysisTicket := strings.TrimSpace(u.adj(hubHome, "project", "ticket", "--attribute", "role=analyst"))
	nocapTicket := strings.TrimSpace(u.adj(hubHome, "project", "ticket"))
	u.adj(bankHome, "enroll", bankTicket)
	u.adj(bankHome, "tcp-outlet", "create", "--to", "7000", "--from", "blast")
	u.adj(bankHome, "relay", "create", "blast")

	// The analysis node as the unit runs it: its ExecStart= with our directories for the
	// unit's /var/lib/adjacent and /run/adjacent.
	state := ownedDir(t, filepath.Join(base, "state"), 0o700)
	runtime := ownedDir(t, filepath.Join(base, "run"), 0o750)
	socket := filepath.Join(runtime, "node.sock")
	// Its config (the unit's /etc/adjacent) opens the API socket to the service's group.
	confDir := ownedDir(t, filepath.Join(base, "etc"), 0o700)
	if err := os.WriteFile(filepath.Join(confDir, "adjacent.yaml"), []byte(fmt.Sprintf("api_socket:\n  group: \"%d\"\n", serviceUID)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.NewReplacer("/var/lib/adjacent", state, "/run/adjacent", runtime, "/etc/adjacent", confDir).Replace(strings.Join(dist.ExecStart()[1:], " ")))
	notify := filepath.Join(base, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := os.Chown(notify, serviceUID, serviceUID); err != nil {
		t.Fatal(err)
	}
	// Under strace, when there is one, to hold the node's system calls to the unit's filter.
	d := *u
	trace := filepath.Join(base, "strace.log")
	if strace, err := exec.LookPath("strace"); err == nil {
		d.wrap = []string{strace, "-f", "-qq", "-s", "512", "-o", trace}
	}
	daemon := d.command([]string{"NOTIFY_SOCKET=" + notify, "WATCHDOG_USEC=1000000"}, args...)
	var log strings.Builder
	daemon.Stdout, daemon.Stderr = &log, &log
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	// terminate sends SIGTERM to the node, which strace may run as its child.
	terminate := func() {
		if pid, _ := strconv.Atoi(strings.TrimSpace(readFile(filepath.Join(state, "node.pid")))); pid > 0 {
			syscall.Kill(pid, syscall.SIGTERM)
		} else {
			daemon.Process.Signal(syscall.SIGTERM)
		}
	}
	t.Cleanup(func() {
		terminate()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			daemon.Process.Kill()
		}
	})
	next := func() (string, error) {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := next(); err != nil || !strings.HasPrefix(got, "READY=1") {
		t.Fatalf("no READY=1 from adjacent %s: %q, %v\n%s", strings.Join(args, " "), got, err, log.String())
	}
	if got, err := next(); err != nil || got != "WATCHDOG=1" {
		t.Fatalf("after READY=1: %q, %v; want WATCHDOG=1 within WATCHDOG_USEC", got, err)
	}
	analysis := func(t *testing.T, args ...string) string {
		t.Helper()
		u := *u
		u.t = t
		return u.adj(state, append([]string{"--socket", socket}, args...)...)
	}
	analysis(t, "enroll", analysisTicket)

	exchange := func(t *testing.T, addr string) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := ns.Exec(t.Context(), filepath.Join(bin, "blast"), "exchange", "-to", addr, "-bytes", strconv.Itoa(4<<20))
			if err == nil && strings.HasPrefix(out, "ok") {
				t.Log(strings.TrimSpace(out))
				return
			}
			if time.Now().After(deadline) { // the relay may still be on its way to the hub (hence --no-wait)
				t.Fatalf("blast exchange to %s: %v: %s\nnode log:\n%s", addr, err, out, log.String())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	t.Run("classic inlet and outlet", func(t *testing.T) {
		analysis(t, "tcp-inlet", "create", "--from", "127.0.0.1:15000", "--via", "blast", "--to", "blast", "--no-wait")
		exchange(t, "127.0.0.1:15000")
	})
	t.Run("transparent inlet on an IP address", func(t *testing.T) {
		analysis(t, "tcp-inlet", "create", "--from", "10.99.0.9:7000", "--via", "blast", "--to", "blast", "--tun", "--no-wait")
		exchange(t, "10.99.0.9:7000")
	})

	t.Run("transparent inlet with a hostname", func(t *testing.T) {
		// The hosts file as the service finds /etc/hosts: root's, in a directory of root's
		// that it may not write, and given to its group as `adjacent service install` does.
		etc := filepath.Join(base, "etc-hosts")
		if err := os.Mkdir(etc, 0o755); err != nil {
			t.Fatal(err)
		}
		hostsFile := filepath.Join(etc, "hosts")
		orig := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
		if err := os.WriteFile(hostsFile, []byte(orig), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := grantHosts(hostsFile, serviceUID); err != nil {
			t.Fatal(err)
		}
		before, err := os.Stat(hostsFile)
		if err != nil {
			t.Fatal(err)
		}
		analysis(t, "tcp-inlet", "create", "--from", "db.bank.internal:7000", "--via", "blast", "--to", "blast", "--tun", "--no-wait", "--hosts-file", hostsFile)
		text := readFile(hostsFile)
		if !strings.HasPrefix(text, orig+hosts.Begin+"\n") || !strings.Contains(text, "\tdb.bank.internal\n") {
			t.Fatalf("the hosts file holds:\n%s\nwant the old lines, then the managed block with db.bank.internal", text)
		}
		after, err := os.Stat(hostsFile)
		if err != nil {
			t.Fatal(err)
		}
		if st := after.Sys().(*syscall.Stat_t); !os.SameFile(before, after) || after.Mode() != before.Mode() || st.Uid != 0 || st.Gid != serviceUID {
			t.Errorf("the hosts file is %v, owner %d:%d, same file %v; want it written in place, mode %v, owner 0:%d kept",
				after.Mode(), st.Uid, st.Gid, os.SameFile(before, after), before.Mode(), serviceUID)
		}
		// A client whose resolver reads that file (bound over /etc/hosts in its own mount
		// namespace, which ip netns exec makes; the machine's /etc/hosts is left alone) finds
		// the name, connects to it and carries a byte stream.
		client := `mount --bind "$0" /etc/hosts && getent hosts db.bank.internal && exec "$@"`
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := ns.Exec(t.Context(), "sh", "-c", client, hostsFile, filepath.Join(bin, "blast"), "exchange", "-to", "db.bank.internal:7000", "-bytes", strconv.Itoa(4<<20))
			if err == nil && strings.Contains(out, "db.bank.internal") && strings.Contains(out, "\nok") {
				t.Log(strings.TrimSpace(out))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a client resolving db.bank.internal through %s: %v: %s\nnode log:\n%s", hostsFile, err, out, log.String())
			}
			time.Sleep(500 * time.Millisecond)
		}

		// A tool that replaces the file (a new one, root's, renamed over it) takes the grant
		// with the old one: the node refuses the next name and says what to do.
		tmp := filepath.Join(etc, "hosts.new")
		if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, hostsFile); err != nil {
			t.Fatal(err)
		}
		u := *u
		u.t = t
		_, err = u.try(state, "--socket", socket, "tcp-inlet", "create", "--from", "web.bank.internal:7000", "--via", "blast", "--to", "blast", "--tun", "--no-wait", "--hosts-file", hostsFile)
		if err == nil || !strings.Contains(err.Error(), "cannot write "+hostsFile) || !strings.Contains(err.Error(), "adjacent service install") || !strings.Contains(err.Error(), "chmod g+w "+hostsFile) {
			t.Fatalf("tcp-inlet create with a name after the hosts file was replaced = %v, want a refusal naming the fix", err)
		}
		t.Log(err)
		if got := readFile(hostsFile); got != text {
			t.Errorf("the replaced hosts file became:\n%s", got)
		}
	})

	t.Run("without CAP_NET_ADMIN --tun is refused, naming it", func(t *testing.T) {
		weak := &unprivileged{t: t, bin: base, ns: ns, caps: "+net_raw"}
		home := ownedDir(t, filepath.Join(base, "nocap"), 0o700)
		t.Cleanup(func() { weak.try(home, "node", "stop") })
		weak.adj(home, "enroll", nocapTicket)
		_, err := weak.try(home, "tcp-inlet", "create", "--from", "10.99.0.10:7000", "--via", "blast", "--to", "blast", "--tun")
		if err == nil || !strings.Contains(err.Error(), "tcp-inlet create: --tun needs CAP_NET_ADMIN") {
			t.Fatalf("tcp-inlet create --tun without CAP_NET_ADMIN = %v, want a refusal naming CAP_NET_ADMIN", err)
		}
		t.Log(err)
		// A classic inlet needs no capability.
		weak.adj(home, "tcp-inlet", "create", "--from", "127.0.0.1:15001", "--via", "blast", "--to", "blast", "--no-wait")
		exchange(t, "127.0.0.1:15001")
	})

	t.Run("nothing in the homes is readable by others", func(t *testing.T) {
		for _, dir := range []string{hubHome, bankHome, state, runtime} {
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Error(err)
					return nil
				}
				fi, err := os.Lstat(path)
				if err != nil {
					t.Error(err)
					return nil
				}
				st := fi.Sys().(*syscall.Stat_t)
				if st.Uid != serviceUID {
					t.Errorf("%s belongs to uid %d, want %d", path, st.Uid, serviceUID)
				}
				if path == socket { // the group's: see the next test
					return nil
				}
				if perm := fi.Mode().Perm(); perm&0o007 != 0 || (dir != runtime && perm&0o070 != 0) || (dir == runtime && perm&0o020 != 0) {
					t.Errorf("%s has mode %v: others (or, in the home, the group) may use it", path, fi.Mode())
				}
				return nil
			})
		}
	})

	t.Run("the API socket is root's and its group's", func(t *testing.T) {
		fi, err := os.Lstat(socket)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o660 || st.Gid != serviceUID {
			t.Errorf("the API socket has mode %v and group %d, want 0660 and %d (api_socket: group:)", fi.Mode().Perm(), st.Gid, serviceUID)
		}
		// An operator in the group runs the CLI against the service's home; one outside may not.
		operator := func(groups string) (string, error) {
			args := []string{"--reuid", "61240", "--regid", "61240"}
			if groups == "" {
				args = append(args, "--clear-groups")
			} else {
				args = append(args, "--groups", groups)
			}
			args = append(args, filepath.Join(base, "adjacent"), "--home", state, "--socket", socket, "status")
			return ns.Exec(t.Context(), append([]string{"setpriv"}, args...)...)
		}
		if out, err := operator(strconv.Itoa(serviceUID)); err != nil || !strings.Contains(out, "inlet") {
			t.Errorf("an operator in the socket's group: %v: %s", err, out)
		}
		if out, err := operator(""); err == nil {
			t.Errorf("an operator outside the socket's group ran status: %s", out)
		}
	})

	t.Run("SIGTERM: STOPPING=1 and a clean exit", func(t *testing.T) {
		terminate()
		for {
			got, err := next()
			if err != nil {
				t.Fatalf("no STOPPING=1: %v", err)
			}
			if got == "STOPPING=1" {
				break
			}
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("the node exited with %v\n%s", err, log.String())
			}
			exited <- nil // for the cleanup
		case <-time.After(15 * time.Second):
			t.Fatal("the node did not exit within 15s of SIGTERM")
		}
		if _, err := os.Lstat(socket); !os.IsNotExist(err) {
			t.Errorf("the API socket is still there after exit: %v", err)
		}
	})

	t.Run("system calls stay inside the unit's SystemCallFilter", func(t *testing.T) {
		if d.wrap == nil {
			t.Skip("no strace (Debian package strace)")
		}
		used, err := tracedSyscalls(readFile(trace), filepath.Join(base, "adjacent"))
		if err != nil {
			t.Fatal(err)
		}
		allowed, denied := unitSyscallFilter(t)
		var outside []string
		for name := range used {
			if !allowed[name] || denied[name] {
				outside = append(outside, name)
			}
		}
		slices.Sort(outside)
		if len(outside) > 0 {
			t.Fatalf("the node called %v, outside @system-service or in ~@privileged @resources: under the unit they fail with EPERM", outside)
		}
		t.Logf("%d distinct system calls, all allowed", len(used))
	})
}

// tracedSyscalls returns the names of the system calls in an `strace -f` log made after the
// traced process executed exe (before that it was setpriv), by it and its threads.
func tracedSyscalls(log, exe string) (map[string]bool, error) {
	used := map[string]bool{}
	first, started := "", false
	for _, line := range strings.Split(log, "\n") {
		pid, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		rest = strings.TrimLeft(rest, " ")
		if first == "" {
			first = pid
		}
		if pid == first && !started {
			started = strings.HasPrefix(rest, "execve(\""+exe+"\"") && strings.HasSuffix(rest, "= 0")
			continue
		}
		name := rest
		if r, ok := strings.CutPrefix(rest, "<... "); ok {
			name, _, _ = strings.Cut(r, " ")
		} else if i := strings.IndexByte(rest, '('); i > 0 {
			name = rest[:i]
		} else {
			continue // signals, exits
		}
		if name == "???" {
			continue // strace could not name a call cut short as the process exited
		}
		used[name] = true
	}
	if !started {
		return nil, fmt.Errorf("strace log: no successful execve of %s:\n%s", exe, log[:min(len(log), 2000)])
	}
	return used, nil
}

// unitSyscallFilter returns the system calls the unit's SystemCallFilter= allows
// (@system-service) and those it takes away again (~@privileged @resources), from this
// machine's systemd-analyze, groups expanded.
func unitSyscallFilter(t *testing.T) (allowed, denied map[string]bool) {
	out, err := exec.Command("systemd-analyze", "syscall-filter").Output()
	if err != nil {
		t.Skipf("systemd-analyze syscall-filter: %v", err)
	}
	groups := map[string][]string{}
	group := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch f := strings.TrimSpace(line); {
		case strings.HasPrefix(line, "@"):
			group = f
		case f == "" || strings.HasPrefix(f, "#"):
		case group != "":
			groups[group] = append(groups[group], f)
		}
	}
	var expand func(set map[string]bool, name string)
	expand = func(set map[string]bool, name string) {
		for _, e := range groups[name] {
			if strings.HasPrefix(e, "@") {
				expand(set, e)
			} else {
				set[e] = true
			}
		}
	}
	allowed, denied = map[string]bool{}, map[string]bool{}
	expand(allowed, "@system-service")
	expand(denied, "@privileged")
	expand(denied, "@resources")
	if len(allowed) < 100 || !allowed["read"] || !denied["setrlimit"] {
		t.Fatalf("systemd-analyze syscall-filter: @system-service has %d calls, want read among them; @resources must hold setrlimit", len(allowed))
	}
	return allowed, denied
}
