package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code. Errors are one line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "adjacent: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

// oneLine folds a multi-line error (cobra's suggestions) into one line.
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	if len(parts) <= 1 {
		return strings.Join(parts, "")
	}
	return parts[0] + "; " + strings.Join(parts[1:], " ")
}

// globals are the flags every command takes.
type globals struct {
	home   string
	socket string
	output string
	stdout io.Writer
}

func newRoot(stdout io.Writer) *cobra.Command {
	g := &globals{stdout: stdout}
	root := &cobra.Command{
		Use:   "adjacent",
		Short: "Make a TCP service in one private network virtually adjacent to clients in another",
		Long: `adjacent joins a TCP client in one network to a TCP service in another, end-to-end
encrypted and mutually authenticated, through a hub that relays without reading.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("--output %q: want text or json", g.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", "", "node home directory (default $"+home.EnvVar+", else ~/.adjacent)")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "the node's API socket (default $"+home.SocketEnvVar+", else node.sock in the home)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%v; see: %s --help", err, cmd.CommandPath())
	})
	root.AddCommand(nodeCommand(g), identityCommand(g), secureChannelCommand(g), messageCommand(g),
		projectCommand(g), enrollCommand(g), credentialCommand(g), relayCommand(g), policyCommand(g),
		outletCommand(g), inletCommand(g), statusCommand(g), versionCommand(g))
	versionFlag(g, root)
	return root
}

func (g *globals) home_() (home.Home, error) {
	h, err := home.Resolve(g.home)
	if err != nil {
		return home.Home{}, err
	}
	return h.WithSocket(g.socket)
}

// client returns a client for the home's node, starting the node in the background if it is
// not running.
func (g *globals) client(ctx context.Context) (*api.Client, error) {
	h, err := g.home_()
	if err != nil {
		return nil, err
	}
	if !node.Running(ctx, h) {
		if err := node.StartBackground(ctx, h); err != nil && !errors.Is(err, node.ErrRunning) {
			return nil, err
		}
	}
	return api.NewClient(h.Socket()), nil
}

// get fetches path from the node into out.
func (g *globals) get(cmd *cobra.Command, path string, out any) error {
	c, err := g.client(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Do(cmd.Context(), "GET", path, nil, out)
}

// print writes v as JSON with --output json, else calls text.
func (g *globals) print(v any, text func(w io.Writer)) error {
	if g.output == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(g.stdout)
	return nil
}

// exactArgs is cobra.ExactArgs with a message that says what to type.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s takes %d argument(s), got %d; usage: %s", cmd.CommandPath(), n, len(args), usage)
		}
		return nil
	}
}
