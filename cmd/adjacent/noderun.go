package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
)

// nodeRun is the node daemon in the foreground, as a service manager runs it: it never
// detaches, logs to stderr, tells systemd when it is ready (Type=notify) and pings its
// watchdog, and stops on SIGINT or SIGTERM. `node create --foreground` is the same.
func nodeRun(g *globals) *cobra.Command {
	var listen, identity, logLevel string
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "Run this home's node in the foreground (for systemd and other service managers)",
		Example: "  adjacent --home /var/lib/adjacent node run --listen 0.0.0.0:4000",
		Args:    exactArgs(0, "adjacent node run [--listen HOST:PORT] [--identity NAME] [--log-level LEVEL]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			return runForeground(cmd, h, listen, identity, logLevel)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "TCP address to accept connections on, e.g. 0.0.0.0:4000 (remembered)")
	cmd.Flags().StringVar(&identity, "identity", "", "run as this identity of the home (default: the last one used, or a new one)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// runForeground runs the node until SIGINT or SIGTERM.
func runForeground(cmd *cobra.Command, h home.Home, listen, identity, logLevel string) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := node.Config{Home: h, Listen: listen, Identity: identity, Logger: log}
	if v := os.Getenv(rehandshakeEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("%s=%q: want a duration of at least 1s, such as 30s", rehandshakeEnv, v)
		}
		cfg.Rehandshake = d
	}
	return node.Run(ctx, cfg)
}

// rehandshakeEnv, when set, is how old a channel's keys get before a fresh handshake
// replaces them (default 1h): the reliability tests shorten it so that re-handshakes
// happen during their runs.
const rehandshakeEnv = "ADJACENT_REHANDSHAKE_AFTER"
