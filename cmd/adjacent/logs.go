package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/internal/logfile"
)

// followPoll is how often `node logs -f` looks for more of the log.
const followPoll = 200 * time.Millisecond

func nodeLogs(g *globals) *cobra.Command {
	var (
		follow bool
		lines  int
	)
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the log of this home's node started in the background",
		Long: `Shows node.log, the log of the node that commands start in the background, which it
rotates at 10 MiB (node.log.1 to node.log.3 are the older ones). A node run by systemd
(adjacent node run) logs to the journal instead: journalctl -u adjacent.`,
		Example: "  adjacent node logs -n 50\n  adjacent node logs -f",
		Args:    exactArgs(0, "adjacent node logs [-f] [-n LINES]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			if lines < 0 {
				return usagef("-n %d: want a number of lines, 0 for the whole current log", lines)
			}
			path := h.Log()
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("no log in %s: its node has not run in the background; under systemd see: journalctl -u adjacent", h.Dir)
			}
			out := cmd.OutOrStdout()
			var off int64
			if lines > 0 {
				off, err = tailLog(out, path, lines)
			} else {
				off, err = catLog(out, path)
			}
			if err != nil || !follow {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return followLog(ctx.Done(), out, path, off)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing what the node logs, across rotations, until interrupted")
	cmd.Flags().IntVarP(&lines, "lines", "n", 0, "print only the last LINES lines, from the rotated files too (default: all of the current log)")
	return cmd
}

// catLog copies the current log and returns how far it read.
func catLog(w io.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("node logs: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	return n, err
}

// tailLog prints the last n lines of the log and of the rotated files before it, oldest
// first, and returns how far it read the current log.
func tailLog(w io.Writer, path string, n int) (int64, error) {
	var chunks [][]byte // newest first
	var off int64
	have := 0
	for i := 0; have < n; i++ {
		b, err := os.ReadFile(logfile.Name(path, i))
		if errors.Is(err, fs.ErrNotExist) && i > 0 {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("node logs: %w", err)
		}
		if i == 0 {
			off = int64(len(b))
		}
		chunks = append(chunks, b)
		have += bytes.Count(b, []byte("\n"))
		if len(b) > 0 && b[len(b)-1] != '\n' {
			have++
		}
	}
	var all []byte
	for i := len(chunks) - 1; i >= 0; i-- {
		all = append(all, chunks[i]...)
		if len(all) > 0 && all[len(all)-1] != '\n' && i > 0 {
			all = append(all, '\n')
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(all))
	sc.Buffer(make([]byte, 64<<10), len(all)+1)
	var keep []string
	for sc.Scan() {
		keep = append(keep, sc.Text())
		if len(keep) > n {
			keep = keep[1:]
		}
	}
	for _, l := range keep {
		fmt.Fprintln(w, l)
	}
	return off, nil
}

// followLog prints what is appended to the log from off on until done is closed; when the
// node rotates the log it finishes the old file and goes on with the new one.
func followLog(done <-chan struct{}, w io.Writer, path string, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("node logs: %w", err)
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("node logs: %w", err)
	}
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return fmt.Errorf("node logs: %w", err)
		}
		if renamedAway(f, path) {
			if _, err := io.Copy(w, f); err != nil { // what came before the rename
				return fmt.Errorf("node logs: %w", err)
			}
			nf, err := os.Open(path)
			if err == nil {
				f.Close()
				f = nf
				continue
			}
		}
		select {
		case <-done:
			return nil
		case <-tick.C:
		}
	}
}

// renamedAway reports whether path now names another file than f.
func renamedAway(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && !os.SameFile(a, b)
}
