package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/home"
)

// ErrRunning means the home's node is already running.
var ErrRunning = errors.New("node already running")

// lock is the exclusive lock a running node holds on its home.
type lock struct{ f *os.File }

func acquireLock(h home.Home) (*lock, error) {
	f, err := home.OpenFile(h.Lock(), os.O_RDWR|os.O_CREATE)
	if err != nil {
		return nil, fmt.Errorf("node: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, runningError(h)
		}
		return nil, fmt.Errorf("node: lock %s: %w", h.Lock(), err)
	}
	return &lock{f}, nil
}

func (l *lock) release() { l.f.Close() }

func runningError(h home.Home) error {
	pid := ""
	if b, err := os.ReadFile(h.Pid()); err == nil {
		pid = " (pid " + strings.TrimSpace(string(b)) + ")"
	}
	return fmt.Errorf("node in %s is %w%s; stop it with: adjacent --home %s node stop", h.Dir, ErrRunning, pid, h.Dir)
}

// Running reports whether the home's node answers on its socket.
func Running(ctx context.Context, h home.Home) bool {
	c := api.NewClient(h.Socket())
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.Do(ctx, "GET", "/v1/node", nil, nil) == nil
}

// StartBackground starts the home's node as a detached daemon running this executable with
// `node create --foreground` and the given extra arguments (and --socket when the home's
// socket lives elsewhere), and waits until it answers. Its output goes to the home's log.
func StartBackground(ctx context.Context, h home.Home, extra ...string) error {
	if err := h.Ensure(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("node: find own executable to start the node: %w", err)
	}
	logf, err := home.OpenFile(h.Log(), os.O_CREATE|os.O_APPEND|os.O_WRONLY)
	if err != nil {
		return fmt.Errorf("node: open log: %w", err)
	}
	defer logf.Close()
	args := []string{"--home", h.Dir}
	if h.SocketPath != "" {
		args = append(args, "--socket", h.SocketPath)
	}
	// The daemon writes its log itself, rotated, and moves its stderr, here until then for
	// what the log cannot say (a failed start), to each new file.
	args = append(append(args, "node", "create", "--foreground", "--log-file", h.Log()), extra...)
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlive the CLI and its terminal
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("node: start %s: %w", exe, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("node: the node exited at start (%v): %s", err, lastLogLine(h))
		case <-ctx.Done():
			return fmt.Errorf("node: no answer from the node started in the background within 15s; see %s", h.Log())
		case <-tick.C:
			if Running(ctx, h) {
				return nil
			}
		}
	}
}

// lastLogLine returns the last line of the home's log, which says why a start failed.
func lastLogLine(h home.Home) string {
	b, err := os.ReadFile(h.Log())
	if err != nil {
		return "see " + h.Log()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Stop asks the home's node to stop and waits until it has released its home.
func Stop(ctx context.Context, h home.Home) error {
	c := api.NewClient(h.Socket())
	defer c.Close()
	if err := c.Do(ctx, "POST", "/v1/node/stop", nil, nil); err != nil {
		if errors.Is(err, api.ErrNotRunning) {
			return fmt.Errorf("node in %s is not running", h.Dir)
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		l, err := acquireLock(h)
		if err == nil {
			l.release()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node in %s did not stop within 15s", h.Dir)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Pid returns the pid recorded by the home's node, or 0.
func Pid(h home.Home) int {
	b, err := os.ReadFile(h.Pid())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
