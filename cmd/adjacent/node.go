package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
)

func nodeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Create, inspect, stop and delete this home's node",
		Long: `A node is the daemon of one home directory (--home, $ADJACENT_HOME, else ~/.adjacent): it
holds the identities, the project credential, the inlets, outlets and relays. Commands that
change something start it in the background when it is not running; commands that only
read do not.`,
		Example: "  adjacent node create --listen 0.0.0.0:4000\n  adjacent node list",
	}
	cmd.AddCommand(nodeCreate(g), nodeRun(g), nodeList(g), nodeShow(g), nodeStop(g), nodeDelete(g), nodeLogs(g))
	return cmd
}

func nodeCreate(g *globals) *cobra.Command {
	var (
		foreground bool
		listen     string
		identity   string
		daemon     daemonFlags
	)
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Start this home's node (in the background unless --foreground)",
		Example: "  adjacent node create\n  adjacent --home ~/.adjacent-hub node create --listen 0.0.0.0:4000",
		Args:    exactArgs(0, "adjacent node create [--listen HOST:PORT] [--foreground]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := daemon.home(g)
			if err != nil {
				return err
			}
			if homeOf(h) == homeForeign {
				return notAHome(h)
			}
			if foreground {
				return runForeground(cmd, h, listen, identity, daemon, "")
			}
			if node.Running(cmd.Context(), h) {
				return fmt.Errorf("node in %s is already running (pid %d); stop it with: adjacent --home %s node stop", h.Dir, node.Pid(h), h.Dir)
			}
			extra := daemon.args()
			if listen != "" {
				extra = append(extra, "--listen", listen)
			}
			if identity != "" {
				extra = append(extra, "--identity", identity)
			}
			if err := node.StartBackground(cmd.Context(), h, extra...); err != nil {
				return err
			}
			info, err := nodeInfo(cmd, h)
			if err != nil {
				return err
			}
			return g.print(info, func(w io.Writer) {
				fmt.Fprintf(w, "Node started in %s (pid %d)", info.Home, info.Pid)
				if len(info.Listen) > 0 {
					fmt.Fprintf(w, ", listening on %s", strings.Join(info.Listen, ", "))
				}
				fmt.Fprintln(w)
			})
		},
	}
	cmd.Flags().BoolVar(&foreground, "foreground", false, "run in the foreground instead of as a background daemon (the same as: adjacent node run)")
	cmd.Flags().StringVar(&listen, "listen", "", "TCP address to accept connections on, e.g. 0.0.0.0:4000 (remembered)")
	cmd.Flags().StringVar(&identity, "identity", "", "run as this identity of the home (default: the last one used, or a new one)")
	daemon.add(cmd)
	return cmd
}

func nodeInfo(cmd *cobra.Command, h home.Home) (*api.NodeInfo, error) {
	c := api.NewClient(h.Socket())
	defer c.Close()
	var info api.NodeInfo
	if err := c.Do(cmd.Context(), "GET", "/v1/node", nil, &info); err != nil {
		if errors.Is(err, api.ErrNotRunning) {
			return nil, fmt.Errorf("node in %s is not running; start it with: adjacent --home %s node create", h.Dir, h.Dir)
		}
		return nil, err
	}
	return &info, nil
}

// nodeStatus is one line of node list.
type nodeStatus struct {
	Home    string   `json:"home"`
	Running bool     `json:"running"`
	Pid     int      `json:"pid,omitempty"`
	Listen  []string `json:"listen,omitempty"`
}

func nodeList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the node of this home and whether it runs",
		Example: "  adjacent node list\n  adjacent --home ~/.adjacent-hub node list -o json",
		Args:    exactArgs(0, "adjacent node list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			nodes := []nodeStatus{}
			kind := homeOf(h)
			if kind == homeNode {
				s := nodeStatus{Home: h.Dir}
				if info, err := nodeInfo(cmd, h); err == nil {
					s.Running, s.Pid, s.Listen = true, info.Pid, info.Listen
				}
				nodes = append(nodes, s)
			}
			empty := fmt.Sprintf("No node in %s; create one with: adjacent --home %s node create", h.Dir, h.Dir)
			if kind == homeForeign {
				empty = "No node: " + notAHome(h).Error()
			}
			var rows [][]string
			for _, n := range nodes {
				status, pid := "stopped", "-"
				if n.Running {
					status, pid = "running", strconv.Itoa(n.Pid)
				}
				rows = append(rows, []string{n.Home, status, pid, orNone(strings.Join(n.Listen, ", "))})
			}
			return g.print(nodes, func(w io.Writer) {
				table(w, empty, []string{"HOME", "STATUS", "PID", "LISTENING"}, rows)
			})
		},
	}
}

func nodeShow(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Short:   "Show the running node: addresses, identity and counters",
		Example: "  adjacent node show\n  adjacent node show -o json",
		Args:    exactArgs(0, "adjacent node show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			info, err := nodeInfo(cmd, h)
			if err != nil {
				return err
			}
			return g.print(info, func(w io.Writer) {
				fmt.Fprintf(w, "Home:        %s\n", info.Home)
				fmt.Fprintf(w, "Pid:         %d\n", info.Pid)
				fmt.Fprintf(w, "Started:     %s (%s ago)\n", info.Started.Format(time.RFC3339), time.Since(info.Started).Round(time.Second))
				if info.Identifier != "" {
					fmt.Fprintf(w, "Identifier:  %s\n", info.Identifier)
				}
				fmt.Fprintf(w, "Listening:   %s\n", orNone(strings.Join(info.Listen, ", ")))
				fmt.Fprintf(w, "Connections: %d\n", info.Transport.Connections)
				fmt.Fprintf(w, "Messages:    %d delivered, %d denied, %d unroutable, %d refused\n", info.Router.Delivered, info.Router.Denied, info.Router.Unroutable, info.Router.Refused)
				fmt.Fprintf(w, "Frames:      %d in (%s), %d out (%s), %s refused\n",
					info.Transport.FramesIn, size(info.Transport.BytesIn), info.Transport.FramesOut, size(info.Transport.BytesOut), count(info.Transport.Refused, "connection"))
			})
		},
	}
}

func nodeStop(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "stop",
		Short:   "Stop this home's node",
		Example: "  adjacent node stop\n  adjacent --home ~/.adjacent-hub node stop",
		Args:    exactArgs(0, "adjacent node stop"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			if err := node.Stop(cmd.Context(), h); err != nil {
				return err
			}
			return g.print(map[string]string{"home": h.Dir, "status": "stopped"}, func(w io.Writer) {
				fmt.Fprintf(w, "Node in %s stopped\n", h.Dir)
			})
		},
	}
}

func nodeDelete(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete",
		Short:   "Stop this home's node and delete its identity keys and state",
		Example: "  adjacent --home ~/.adjacent-test node delete --yes",
		Args:    exactArgs(0, "adjacent node delete --yes"),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home_()
			if err != nil {
				return err
			}
			switch homeOf(h) {
			case homeNone:
				return fmt.Errorf("no node in %s", h.Dir)
			case homeForeign:
				return notAHome(h)
			}
			if !yes {
				return fmt.Errorf("node delete removes the identity keys and all state in %s; to confirm, run: adjacent --home %s node delete --yes", h.Dir, h.Dir)
			}
			if node.Running(cmd.Context(), h) {
				if err := node.Stop(cmd.Context(), h); err != nil {
					return err
				}
			}
			for _, path := range h.Files() { // these and nothing else: --home may be mistyped
				if err := os.RemoveAll(path); err != nil {
					return fmt.Errorf("node delete: %w", err)
				}
			}
			os.Remove(h.Dir) // only if now empty
			return g.print(map[string]string{"home": h.Dir, "status": "deleted"}, func(w io.Writer) {
				fmt.Fprintf(w, "Node in %s deleted\n", h.Dir)
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm that keys and state are to be deleted")
	return cmd
}
