package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
	"github.com/adjacentnet/adjacent/internal/logfile"
)

// daemonFlags are the flags of `node run` and `node create` about how the daemon reports:
// its log and its metrics.
type daemonFlags struct {
	logLevel      string
	logFormat     string
	logFile       string // the background daemon's own log, rotated (set by node.StartBackground)
	metrics       string
	metricsPublic bool
}

func (f *daemonFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json (one object a line); text has no timestamps under systemd, whose journal adds them")
	fs.StringVar(&f.logFile, "log-file", "", "append the log to FILE, rotated at 10 MiB with 3 kept, instead of stderr")
	fs.MarkHidden("log-file") // the background mode's; `adjacent node logs` reads it
	fs.StringVar(&f.metrics, "metrics", "", `serve Prometheus metrics at http://ADDR/metrics, loopback only, e.g. 127.0.0.1:9100 (remembered; "off" turns them off)`)
	fs.BoolVar(&f.metricsPublic, "metrics-allow-public", false, "allow --metrics on an address that is not loopback (the metrics have no authentication)")
}

// check validates the flags before anything starts.
func (f *daemonFlags) check() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return usagef("--log-format %q: want text or json", f.logFormat)
	}
	if f.metrics != "" && f.metrics != node.MetricsOff {
		return node.CheckMetricsAddr(f.metrics, f.metricsPublic)
	}
	return nil
}

// home is the home a node is to run in, once the flags are valid.
func (f *daemonFlags) home(g *globals) (home.Home, error) {
	h, err := g.home_()
	if err != nil {
		return home.Home{}, err
	}
	return h, f.check()
}

// args are the flags again, for the daemon started in the background.
func (f *daemonFlags) args() []string {
	out := []string{"--log-level", f.logLevel, "--log-format", f.logFormat}
	if f.metrics != "" {
		out = append(out, "--metrics", f.metrics)
	}
	if f.metricsPublic {
		out = append(out, "--metrics-allow-public")
	}
	return out
}

// underSystemd reports whether systemd started this process (it sets INVOCATION_ID for a
// unit's processes and JOURNAL_STREAM when their stderr is the journal), whose journal
// stamps each line itself.
func underSystemd() bool {
	return os.Getenv("INVOCATION_ID") != "" || os.Getenv("JOURNAL_STREAM") != ""
}

// logger returns the daemon's logger, writing to stderr or to the rotated log file, and
// what to close when the daemon ends.
func (f *daemonFlags) logger(stderr io.Writer, level *slog.LevelVar) (*slog.Logger, io.Closer, error) {
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	w, closer := stderr, io.Closer(io.NopCloser(nil))
	if f.logFile != "" {
		lf, err := logfile.Open(f.logFile, logfile.Config{Stderr: true})
		if err != nil {
			return nil, nil, err
		}
		w, closer = lf, lf
	}
	return newLogger(w, level, f.logFormat, f.logFormat == "text" && f.logFile == "" && underSystemd()), closer, nil
}

// newLogger returns a text or JSON logger; noTime leaves out the timestamps (JSON keeps
// them: whoever reads it parses them).
func newLogger(w io.Writer, level slog.Leveler, format string, noTime bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if noTime {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
