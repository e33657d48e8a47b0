package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/home"
	"github.com/adjacentnet/adjacent/control/node"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code: 0, 1 when the command failed, 2
// when the command line is wrong. Errors are one line on stderr, a JSON object under
// --output json.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
			err = usageError{err}
		}
		return printError(stderr, err, wantsJSON(args))
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
		Example: `  adjacent project create acme --listen 0.0.0.0:4000      # on the hub
  adjacent project ticket --relay postgres > bank.ticket   # on the hub
  adjacent enroll bank.ticket                              # on the database's side
  adjacent tcp-outlet create --to 5432 && adjacent relay create postgres
  adjacent tcp-inlet create --from 15432 --via postgres    # on the client's side`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" {
				return usagef("--output %q: want text or json", g.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", "", "node home directory (default $"+home.EnvVar+", else ~/.adjacent)")
	root.PersistentFlags().StringVar(&g.socket, "socket", "", "the node's API socket (default $"+home.SocketEnvVar+", else node.sock in the home)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%v; see: %s --help", err, cmd.CommandPath())
	})
	root.AddCommand(nodeCommand(g), identityCommand(g), secureChannelCommand(g), messageCommand(g),
		projectCommand(g), enrollCommand(g), credentialCommand(g), relayCommand(g), policyCommand(g),
		outletCommand(g), inletCommand(g), statusCommand(g), versionCommand(g), manCommand(),
		configCommand(g), reloadCommand(g), serviceCommand(g))
	versionFlag(g, root)
	groups(root)
	g.completeResources(root)
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
// not running. It refuses a directory that holds other things and no node.
func (g *globals) client(ctx context.Context) (*api.Client, error) {
	h, err := g.home_()
	if err != nil {
		return nil, err
	}
	if !node.Running(ctx, h) {
		if homeOf(h) == homeForeign {
			return nil, notAHome(h)
		}
		if err := node.StartBackground(ctx, h); err != nil && !errors.Is(err, node.ErrRunning) {
			return nil, err
		}
	}
	return api.NewClient(h.Socket()), nil
}

// runningClient returns a client for the home's node if it runs: commands that only read
// do not start one, and say why they cannot answer.
func (g *globals) runningClient(ctx context.Context) (*api.Client, error) {
	h, err := g.home_()
	if err != nil {
		return nil, err
	}
	if node.Running(ctx, h) {
		return api.NewClient(h.Socket()), nil
	}
	switch homeOf(h) {
	case homeForeign:
		return nil, notAHome(h)
	case homeNone:
		return nil, fmt.Errorf("no node in %s; create one with: adjacent --home %s node create", h.Dir, h.Dir)
	}
	return nil, fmt.Errorf("node in %s is not running; start it with: adjacent --home %s node create", h.Dir, h.Dir)
}

// call sends a request to the home's node, starting the node if need be.
func (g *globals) call(cmd *cobra.Command, method, path string, in, out any) error {
	c, err := g.client(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Do(cmd.Context(), method, path, in, out)
}

// get fetches path from the running node into out; it does not start a node.
func (g *globals) get(cmd *cobra.Command, path string, out any) error {
	c, err := g.runningClient(cmd.Context())
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

// What a home directory is.
const (
	homeNone    = iota // missing, or an empty directory: a node may be created there
	homeNode           // holds a node's files
	homeForeign        // holds other things and none of a node's files, e.g. /tmp
)

func homeOf(h home.Home) int {
	entries, err := os.ReadDir(h.Dir)
	if err != nil || len(entries) == 0 {
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return homeForeign // not a directory, or unreadable
		}
		return homeNone
	}
	for _, f := range h.Files() {
		if _, err := os.Lstat(f); err == nil {
			return homeNode
		}
	}
	return homeForeign
}

func notAHome(h home.Home) error {
	return fmt.Errorf("%s is not a node's home: it holds other files and no node; give --home a new or empty directory, e.g. --home %s", h.Dir, filepath.Join(h.Dir, "adjacent"))
}
