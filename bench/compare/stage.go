package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/adjacentnet/adjacent/internal/netns"
)

// stage holds what one mode (or the whole run) started: background processes and other
// undo steps, run in reverse order by close. Each process logs to its own file in logs.
type stage struct {
	logs string
	undo []func()
}

func newStage(logs string) (*stage, error) {
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	return &stage{logs: logs}, nil
}

// onClose adds an undo step, run by close before the steps added earlier.
func (s *stage) onClose(f func()) { s.undo = append(s.undo, f) }

// close runs every undo step, newest first. It may be called again; it does nothing then.
func (s *stage) close() {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
}

// proc is a background process in a namespace.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// start runs name with args in ns in the background, logging to logs/label.log, with env
// added to this process's environment. close stops it: SIGTERM, then SIGKILL after 3s.
func (s *stage) start(ns *netns.Namespace, label string, env []string, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(s.logs, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := ns.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group: an interrupt at the terminal reaches only compare, which then
	// stops everything in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s in %s: %w", label, ns, err)
	}
	p := &proc{name: label, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.onClose(p.stop)
	return p, nil
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, with the last line of its log.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %s", p.name, lastLine(p.log))
	default:
		return nil
	}
}

// lastLine is the last non-empty line of a log file, for one-line error notes.
func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return "(nothing logged)"
}

// waitListen waits until something in ns listens on TCP port, or p (if not nil) exits.
func waitListen(ctx context.Context, ns *netns.Namespace, port int, p *proc) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		out, _ := ns.Exec(ctx, "ss", "-ltnH", fmt.Sprintf("sport = :%d", port))
		if strings.TrimSpace(out) != "" {
			return nil
		}
		if p != nil {
			if err := p.exited(); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on port %d in %s after 10s", port, ns)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runCmd runs a command outside the namespaces and returns what it printed.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
