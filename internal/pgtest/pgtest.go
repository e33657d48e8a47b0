package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is the name of the database Start creates; User is the superuser it connects as.
const (
	Database = "test"
	User     = "postgres"
)

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	portAttempts = 5
)

var binaries = sync.OnceValues(findBinaries)

// Binaries returns the directory of the newest PostgreSQL server installation, holding
// postgres, initdb and psql: the newest /usr/lib/postgresql/<version>/bin, or else the real
// directory (symlinks resolved) of a postgres found on PATH.
func Binaries() (dir string, err error) { return binaries() }

func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return !isServerDir(d) })
	if len(dirs) > 0 {
		slices.SortFunc(dirs, func(a, b string) int { return slices.Compare(versionOf(a), versionOf(b)) })
		return dirs[len(dirs)-1], nil
	}
	// Debian puts wrappers or symlinks on PATH; only a directory that also holds initdb is
	// a server installation.
	if p, err := exec.LookPath("postgres"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && isServerDir(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", errors.New("no PostgreSQL server programs (postgres and initdb) in /usr/lib/postgresql/*/bin or on PATH")
}

func isServerDir(dir string) bool {
	for _, name := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf returns the numeric parts of the version directory in /usr/lib/postgresql/V/bin.
func versionOf(binDir string) []int {
	var v []int
	for _, part := range strings.Split(filepath.Base(filepath.Dir(binDir)), ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			n = -1
		}
		v = append(v, n)
	}
	return v
}

// Start runs a new PostgreSQL server for the test and returns the DSN of an empty database
// on it, reached over TCP on 127.0.0.1 as the superuser without a password. The server's
// Unix socket is in its temporary directory. The server is stopped and its directory removed
// when the test ends. PostgreSQL refuses to run as root, so as root the server runs as the
// postgres user. Start skips the test if the server programs are not installed.
func Start(t testing.TB) (dsn string) {
	t.Helper()
	return StartWith(t, Options{})
}

// Options place a server.
type Options struct {
	// Namespace, if set, runs the server in that network namespace (made by the test), on
	// its loopback address. The returned DSN then reaches it over its Unix socket, which
	// does not depend on the namespace.
	Namespace string
	// Port is the TCP port; 0 picks a free one (outside a namespace only).
	Port int
}

// StartWith is Start with Options.
func StartWith(t testing.TB, opts Options) (dsn string) {
	t.Helper()
	return StartServer(t, opts).DSN()
}

// Server is a running test server that a test can stop and start again, as an outage of
// its database.
type Server struct {
	bin, dir, data string
	attr           *syscall.SysProcAttr
	ns             string

	mu  sync.Mutex
	srv *server
	dsn string
}

// DSN reaches the test database, as Start's result does.
func (s *Server) DSN() string { return s.dsn }

// Stop shuts the server down fast (clients are disconnected) and waits until it is gone.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.stop()
}

// Start runs a stopped server again, on its port with its data.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.srv.done:
	default:
		return errors.New("pgtest: the server is running")
	}
	srv, err := startServer(s.bin, s.dir, s.data, s.srv.port, s.attr, s.ns)
	if err != nil {
		return fmt.Errorf("pgtest: start again: %w", err)
	}
	s.srv = srv
	return nil
}

// StartServer is StartWith, returning the server so that the test can stop and start it.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := Binaries()
	if err != nil {
		t.Skipf("pgtest: %v; `make test` installs them (Debian package postgresql)", err)
	}
	attr, owner, err := procAttr()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if owner != nil {
		if err := os.Chown(dir, owner.uid, owner.gid); err != nil {
			t.Fatalf("pgtest: give %s to the postgres user: %v", dir, err)
		}
	}
	data := filepath.Join(dir, "data")

	initdb := command(bin, "initdb", dir, attr, "-D", data, "-U", User, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: %s: %v\n%s", initdb, err, out)
	}

	var srv *server
	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				t.Fatalf("pgtest: %v", err)
			}
		}
		srv, err = startServer(bin, dir, data, port, attr, opts.Namespace)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			t.Fatalf("pgtest: %v", err)
		}
	}
	ts := &Server{bin: bin, dir: dir, data: data, attr: attr, ns: opts.Namespace, srv: srv, dsn: srv.dsn(Database)}
	t.Cleanup(func() {
		if err := ts.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := createDatabase(ctx, srv.dsn("postgres"), Database); err != nil {
		t.Fatalf("pgtest: %v\n%s", err, srv.log())
	}
	return ts
}

// inNamespace wraps cmd to run in the network namespace ns, as the user attr names (ip
// netns exec needs root, so the switch to that user happens after it, with setpriv).
func inNamespace(cmd *exec.Cmd, ns string, attr *syscall.SysProcAttr) {
	args := []string{"netns", "exec", ns}
	if attr != nil && attr.Credential != nil {
		args = append(args, "setpriv", "--reuid="+strconv.Itoa(int(attr.Credential.Uid)),
			"--regid="+strconv.Itoa(int(attr.Credential.Gid)), "--clear-groups")
	}
	cmd.Args = append(append([]string{"ip"}, args...), cmd.Args...)
	cmd.Path = "/usr/sbin/ip"
	if _, err := os.Stat(cmd.Path); err != nil {
		cmd.Path = "/sbin/ip"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
}

func command(bin, name, dir string, attr *syscall.SysProcAttr, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Dir = dir // the postgres user may not be able to enter the test's directory
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = attr
	return cmd
}

type owner struct{ uid, gid int }

// procAttr returns how to run the server's programs: as the postgres user when running as
// root, else as ourselves.
func procAttr() (*syscall.SysProcAttr, *owner, error) {
	if os.Geteuid() != 0 {
		return baseProcAttr(nil), nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user to run it as (the Debian package postgresql creates it): %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("postgres user: %w", err)
	}
	o := &owner{uid, gid}
	return baseProcAttr(o), o, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

var errPortTaken = errors.New("port taken")

// server is a running postgres.
type server struct {
	cmd       *exec.Cmd
	port      int
	socketDir string
	logPath   string
	done      chan struct{} // closed when the process has exited
	waitErr   error
}

func startServer(bin, dir, data string, port int, attr *syscall.SysProcAttr, ns string) (*server, error) {
	s := &server{port: port, socketDir: dir, logPath: filepath.Join(dir, "postgres.log"), done: make(chan struct{})}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = command(bin, "postgres", dir, attr,
		"-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=50", "-c", "max_wal_size=256MB",
		"-c", "logging_collector=off", "-c", "log_min_messages=warning")
	if ns != "" {
		inNamespace(s.cmd, ns, attr)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.cmd, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()

	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready(data) {
			return s, nil
		}
		select {
		case <-s.done:
			log := s.log()
			if strings.Contains(log, "could not bind") || strings.Contains(log, "already in use") {
				return nil, fmt.Errorf("port %d: %w", port, errPortTaken)
			}
			return nil, fmt.Errorf("postgres exited while starting (%v):\n%s", s.waitErr, log)
		case <-deadline.C:
			s.stop()
			return nil, fmt.Errorf("postgres did not accept connections within %v:\n%s", startTimeout, s.log())
		case <-tick.C:
		}
	}
}

// ready reports whether the postmaster says it accepts connections: the status line of
// postmaster.pid (its eighth) is "ready", which is what pg_ctl waits for.
func ready(data string) bool {
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) > 7 && strings.TrimSpace(lines[7]) == "ready"
}

func (s *server) log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(bytes.TrimSpace(b))
}

// dsn reaches the server over its Unix socket, which works from any network namespace.
func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&port=%d&sslmode=disable", User, db, s.socketDir, s.port)
}

// stop asks for a fast shutdown (SIGINT: disconnect clients, stop) and waits, killing the
// server if it does not stop in time.
func (s *server) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
	}
	s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("postgres did not stop within %v of SIGINT; killed it:\n%s", stopTimeout, s.log())
}

func createDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", dsn, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
