package main

import (
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func outletCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tcp-outlet", Short: "TCP outlets: where portals come out and connect to a TCP server"}
	var req api.CreateOutlet
	create := &cobra.Command{
		Use:     "create --to [HOST:]PORT",
		Short:   "Create an outlet that connects each portal session to [HOST:]PORT",
		Example: "  adjacent tcp-outlet create --to 5432\n  adjacent tcp-outlet create --to 10.0.0.5:5432 --from db --allow '(= subject.role \"analyst\")'",
		Args:    exactArgs(0, "adjacent tcp-outlet create --to [HOST:]PORT [--from NAME] [--allow EXPR]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.To == "" {
				return fmt.Errorf("tcp-outlet create needs --to [HOST:]PORT, e.g. --to 5432")
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var o api.Outlet
			if err := c.Do(cmd.Context(), "POST", "/v1/outlets", req, &o); err != nil {
				return err
			}
			return g.print(o, func(w io.Writer) {
				fmt.Fprintf(w, "Outlet %s ready: portals reaching %s connect to %s\n", o.Name, o.Address, o.Target)
			})
		},
	}
	create.Flags().StringVar(&req.To, "to", "", "[HOST:]PORT of the TCP server (host defaults to 127.0.0.1)")
	create.Flags().StringVar(&req.Name, "from", "outlet", "name of the outlet, which inlets give as --to")
	create.Flags().StringVar(&req.Allow, "allow", "", "policy for who may connect (default: project members)")
	list := &cobra.Command{
		Use:  "list",
		Args: exactArgs(0, "adjacent tcp-outlet list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var os []api.Outlet
			if err := g.get(cmd, "/v1/outlets", &os); err != nil {
				return err
			}
			return g.print(os, func(w io.Writer) {
				for _, o := range os {
					fmt.Fprintf(w, "%s\t-> %s\t%d active, %d total, %d bytes in, %d out\n", o.Name, o.Target, o.Active, o.Total, o.BytesIn, o.BytesOut)
				}
			})
		},
	}
	cmd.AddCommand(create, list, deleteCommand(g, "adjacent tcp-outlet delete NAME", "/v1/outlets/", "Outlet"))
	return cmd
}

func inletCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tcp-inlet", Short: "TCP inlets: local listeners whose connections go through portals"}
	var req api.CreateInlet
	create := &cobra.Command{
		Use:   "create --from [HOST:]PORT (--via RELAY [--to OUTLET] | --to ROUTE) [--tun [--hosts-file PATH]]",
		Short: "Listen on [HOST:]PORT and carry each connection to an outlet",
		Long: `Listen on [HOST:]PORT and carry each connection to an outlet.

With --tun the inlet is transparent: clients connect to HOST:PORT itself, which the node
serves on its TUN device. HOST is an IP address (IPv4 or IPv6), or a name that the node maps
to an address from --address-range and writes into a managed block of --hosts-file. It needs
CAP_NET_ADMIN: run the node as root or as the system service.`,
		Example: `  adjacent tcp-inlet create --from 15432 --via postgres
  adjacent tcp-inlet create --from 15432 --to /ip4/10.0.0.2/tcp/4000/secure/api/service/outlet
  adjacent tcp-inlet create --from db.bank.internal:5432 --via postgres --tun`,
		Args: exactArgs(0, "adjacent tcp-inlet create --from [HOST:]PORT (--via RELAY [--to OUTLET] | --to ROUTE) [--allow EXPR] [--tun [--hosts-file PATH]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.From == "" {
				return fmt.Errorf("tcp-inlet create needs --from [HOST:]PORT, e.g. --from 15432")
			}
			if (req.HostsFile != "" || req.AddressRange != "") && !req.Tun {
				return fmt.Errorf("tcp-inlet create: --hosts-file and --address-range go with --tun")
			}
			if req.HostsFile != "" {
				abs, err := filepath.Abs(req.HostsFile)
				if err != nil {
					return fmt.Errorf("tcp-inlet create: --hosts-file: %w", err)
				}
				req.HostsFile = abs
			}
			if req.Via == "" && req.To == "" {
				return fmt.Errorf("tcp-inlet create needs --via RELAY (an outlet behind a relay) or --to ROUTE (a route to an outlet)")
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var in api.Inlet
			if err := c.Do(cmd.Context(), "POST", "/v1/inlets", req, &in); err != nil {
				return err
			}
			return g.print(in, func(w io.Writer) {
				switch {
				case in.Host != "":
					fmt.Fprintf(w, "Transparent inlet on %s (%s in %s, device %s), connected through %s\n", in.Listen, in.Host, in.HostsFile, in.Tun, in.Route)
				case in.Tun != "":
					fmt.Fprintf(w, "Transparent inlet on %s (device %s), connected through %s\n", in.Listen, in.Tun, in.Route)
				default:
					fmt.Fprintf(w, "Inlet listening on %s, connected through %s\n", in.Listen, in.Route)
				}
			})
		},
	}
	create.Flags().StringVar(&req.From, "from", "", "[HOST:]PORT to listen on (host defaults to 127.0.0.1)")
	create.Flags().StringVar(&req.Via, "via", "", "relay at the project's hub behind which the outlet is")
	create.Flags().StringVar(&req.To, "to", "", "with --via: the outlet's name (default outlet); without: a route to an outlet")
	create.Flags().StringVar(&req.Allow, "allow", "", "policy the outlet's node must satisfy (default: project members)")
	create.Flags().BoolVar(&req.Tun, "tun", false, "transparent: serve HOST:PORT itself on the node's TUN device (needs CAP_NET_ADMIN)")
	create.Flags().StringVar(&req.HostsFile, "hosts-file", "", "with --tun and a host name: the hosts file to map it in (default /etc/hosts)")
	create.Flags().StringVar(&req.AddressRange, "address-range", "", "with --tun and a host name: where its address comes from (default 100.127.0.0/16)")
	list := &cobra.Command{
		Use:  "list",
		Args: exactArgs(0, "adjacent tcp-inlet list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ins []api.Inlet
			if err := g.get(cmd, "/v1/inlets", &ins); err != nil {
				return err
			}
			return g.print(ins, func(w io.Writer) {
				for _, in := range ins {
					fmt.Fprintf(w, "%s\t%s\tpath %s, %d active, %d total, %d bytes in, %d out%s\n", in.Listen, in.Route, upDown(in.Up), in.Active, in.Total, in.BytesIn, in.BytesOut, transparentNote(in))
				}
			})
		},
	}
	cmd.AddCommand(create, list, deleteCommand(g, "adjacent tcp-inlet delete [HOST:]PORT", "/v1/inlets/", "Inlet"))
	return cmd
}

// transparentNote describes a transparent inlet in listings.
func transparentNote(in api.Inlet) string {
	switch {
	case in.Host != "":
		return fmt.Sprintf(", transparent (%s, %s)", in.Host, in.Tun)
	case in.Tun != "":
		return fmt.Sprintf(", transparent (%s)", in.Tun)
	}
	return ""
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// deleteCommand is the delete subcommand of a resource at path/NAME.
func deleteCommand(g *globals, usage, path, what string) *cobra.Command {
	return &cobra.Command{
		Use:  "delete NAME",
		Args: exactArgs(1, usage),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Do(cmd.Context(), "DELETE", path+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return g.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "%s %s deleted\n", what, args[0]) })
		},
	}
}

func statusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The node at a glance: identity, project, inlets, outlets, relays, channels",
		Args:  exactArgs(0, "adjacent status"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var st api.Status
			if err := g.get(cmd, "/v1/status", &st); err != nil {
				return err
			}
			return g.print(st, func(w io.Writer) {
				fmt.Fprintf(w, "Node %s (pid %d) in %s\n", st.Node.Identifier, st.Node.Pid, st.Node.Home)
				if len(st.Node.Listen) > 0 {
					fmt.Fprintf(w, "  listening on %s\n", strings.Join(st.Node.Listen, ", "))
				}
				if p := st.Project; p != nil {
					conn := ""
					if p.Role == "member" {
						conn = ", hub " + map[bool]string{true: "connected", false: "NOT connected"}[p.Connected]
					}
					fmt.Fprintf(w, "Project %s (%s%s)\n", p.Name, p.Role, conn)
				}
				for _, in := range st.Inlets {
					fmt.Fprintf(w, "Inlet  %s -> %s: path %s, %d active, %d total, %d B in, %d B out%s\n", in.Listen, in.Route, upDown(in.Up), in.Active, in.Total, in.BytesIn, in.BytesOut, transparentNote(in))
				}
				for _, o := range st.Outlets {
					fmt.Fprintf(w, "Outlet %s -> %s: %d active, %d total, %d B in, %d B out\n", o.Name, o.Target, o.Active, o.Total, o.BytesIn, o.BytesOut)
				}
				for _, r := range st.Relays {
					fmt.Fprintf(w, "Relay  %s\n", r)
				}
				fmt.Fprintf(w, "%d secure channels\n", len(st.Channels))
			})
		},
	}
}
