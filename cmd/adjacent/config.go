package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/config"
)

// readConfigFile reads and validates a config file.
func readConfigFile(path string) (*config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, config.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return config.Decode(path, b)
}

func policies(n int) string {
	if n == 1 {
		return "1 policy"
	}
	return fmt.Sprintf("%d policies", n)
}

// originNote marks a resource the config file owns in a table.
func originNote(origin string) string {
	if origin == "" {
		return ""
	}
	return " [" + origin + "]"
}

func configCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a node's YAML config file, or show the running node's state as one",
		Long: `A config file declares a node: its project (hub: or enroll:), relays, outlets, inlets,
policies, the API socket's group, log level and metrics address. The service runs
adjacent node run --config /etc/adjacent/adjacent.yaml, which applies it at start, on SIGHUP
and on: adjacent reload. Resources the file owns show as [config] in status.`,
		Example: "  adjacent config check /etc/adjacent/adjacent.yaml\n  adjacent config show > adjacent.yaml",
	}
	check := &cobra.Command{
		Use:     "check FILE",
		Short:   "Validate a config file without applying it",
		Example: "  adjacent config check /etc/adjacent/adjacent.yaml",
		Args:    exactArgs(1, "adjacent config check FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := readConfigFile(args[0])
			if err != nil {
				return err // every refusal, FILE:LINE: reason, joined by "; "
			}
			summary := map[string]any{"file": args[0], "valid": true, "relays": len(c.Relays), "outlets": len(c.Outlets), "inlets": len(c.Inlets), "policies": len(c.Policies)}
			return g.print(summary, func(w io.Writer) {
				fmt.Fprintf(w, "%s: valid: %s, %s, %s, %s\n", args[0], count(len(c.Relays), "relay"), count(len(c.Outlets), "outlet"), count(len(c.Inlets), "inlet"), policies(len(c.Policies)))
			})
		},
	}
	show := &cobra.Command{
		Use:     "show",
		Short:   "Print the running node's state as a config file (YAML that config check accepts)",
		Example: "  adjacent config show\n  adjacent --home /var/lib/adjacent --socket /run/adjacent/node.sock config show",
		Args:    exactArgs(0, "adjacent config show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c config.Config
			if err := g.get(cmd, "/v1/config", &c); err != nil {
				return err
			}
			if g.output == "json" {
				return g.print(c, nil)
			}
			b, err := config.Marshal(&c)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(b)
			return err
		},
	}
	cmd.AddCommand(check, show)
	return cmd
}

func reloadCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "reload",
		Short: "Apply the running node's config file again (as SIGHUP does)",
		Long: `Reads the node's config file (node run --config FILE) again and applies it: what is new is
created, what is gone is deleted, what changed is replaced; the rest keeps its sessions. An
invalid file is refused with file, line and reason, and the node keeps running as it was.`,
		Example: "  adjacent --home /var/lib/adjacent --socket /run/adjacent/node.sock reload",
		Args:    exactArgs(0, "adjacent reload"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res api.ConfigApplied
			c, err := g.runningClient(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Do(cmd.Context(), "POST", "/v1/config/reload", struct{}{}, &res); err != nil {
				return err
			}
			if err := g.print(res, func(w io.Writer) {
				if len(res.Created)+len(res.Deleted)+len(res.Replaced) == 0 {
					fmt.Fprintf(w, "%s applied: nothing changed\n", res.File)
					return
				}
				fmt.Fprintf(w, "%s applied:", res.File)
				for _, part := range []struct {
					verb string
					what []string
				}{{"created", res.Created}, {"deleted", res.Deleted}, {"replaced", res.Replaced}} {
					if len(part.what) > 0 {
						fmt.Fprintf(w, " %s %s;", part.verb, strings.Join(part.what, ", "))
					}
				}
				fmt.Fprintln(w)
			}); err != nil {
				return err
			}
			if len(res.Errors) > 0 {
				return fmt.Errorf("config %s applied in part: %s", res.File, strings.Join(res.Errors, "; "))
			}
			return nil
		},
	}
}
