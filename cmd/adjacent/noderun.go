package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
)

// nodeRun is the node daemon in the foreground, as a service manager runs it: it never
// detaches, logs to stderr (without timestamps under systemd, whose journal adds them; or
// JSON with --log-format json), serves metrics with --metrics, tells systemd when it is ready (Type=notify) and pings its
// watchdog, and stops on SIGINT or SIGTERM. `node create --foreground` is the same.
func nodeRun(g *globals) *cobra.Command {
	var (
		listen, identity, configFile string
		daemon                       daemonFlags
	)
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "Run this home's node in the foreground (for systemd and other service managers)",
		Example: "  adjacent --home /var/lib/adjacent node run --listen 0.0.0.0:4000",
		Args:    exactArgs(0, "adjacent node run [--listen HOST:PORT] [--identity NAME] [--log-level LEVEL] [--log-format text|json] [--metrics ADDR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := daemon.home(g)
			if err != nil {
				return err
			}
			return runForeground(cmd, h, listen, identity, daemon, configFile)
		},
	}
	cmd.Flags().StringVar(&configFile, "config", "", "apply this YAML file at start, on SIGHUP and on: adjacent reload (see: adjacent config check)")
	cmd.Flags().StringVar(&listen, "listen", "", "TCP address to accept connections on, e.g. 0.0.0.0:4000 (remembered)")
	cmd.Flags().StringVar(&identity, "identity", "", "run as this identity of the home (default: the last one used, or a new one)")
	daemon.add(cmd)
	return cmd
}

// runForeground runs the node until SIGINT or SIGTERM.
func runForeground(cmd *cobra.Command, h home.Home, listen, identity string, daemon daemonFlags, configFile string) error {
	if configFile != "" {
		abs, err := filepath.Abs(configFile)
		if err != nil {
			return err
		}
		configFile = abs
		c, err := readConfigFile(configFile)
		if err != nil {
			return err
		}
		// The file declares the node; a flag given on the command line wins.
		if c.LogLevel != "" && !cmd.Flags().Changed("log-level") {
			daemon.logLevel = c.LogLevel
		}
		if !cmd.Flags().Changed("metrics") {
			daemon.metrics = c.Metrics
			if daemon.metrics == "" {
				daemon.metrics = node.MetricsOff
			}
			if err := daemon.check(); err != nil {
				return fmt.Errorf("%s: %w", configFile, err)
			}
		}
	}
	var level slog.LevelVar
	log, closeLog, err := daemon.logger(os.Stderr, &level)
	if err != nil {
		return err
	}
	defer closeLog.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := node.Config{Home: h, Listen: listen, Identity: identity, Logger: log, ConfigFile: configFile, LogLevel: &level,
		Metrics: daemon.metrics, MetricsAllowPublic: daemon.metricsPublic}
	if configFile != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		reload := make(chan struct{}, 1)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}
		}()
		cfg.Reload = reload
	}
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
