package main

import (
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func outletCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tcp-outlet",
		Short:   "TCP outlets: where portals come out and connect to a TCP server",
		Example: "  adjacent tcp-outlet create --to 5432 --from db\n  adjacent tcp-outlet list",
	}
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
			var o api.Outlet
			if err := g.call(cmd, "POST", "/v1/outlets", req, &o); err != nil {
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
		Use:     "list",
		Short:   "List this node's outlets and their traffic",
		Example: "  adjacent tcp-outlet list\n  adjacent tcp-outlet list -o json",
		Args:    exactArgs(0, "adjacent tcp-outlet list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var os []api.Outlet
			if err := g.get(cmd, "/v1/outlets", &os); err != nil {
				return err
			}
			return g.print(os, func(w io.Writer) { outletTable(w, os) })
		},
	}
	cmd.AddCommand(create, list, deleteCommand(g, "tcp-outlet", "NAME", "/v1/outlets/", "Outlet", "Delete an outlet (by its name, as in tcp-outlet list)", "  adjacent tcp-outlet delete db"))
	return cmd
}

// The columns of portals in lists and status.
var (
	outletHeader = []string{"OUTLET", "TARGET", "ACTIVE", "TOTAL", "IN", "OUT"}
	inletHeader  = []string{"INLET", "LISTEN", "ROUTE", "PATH", "ACTIVE", "TOTAL", "REFUSED", "IN", "OUT"}
)

func outletTable(w io.Writer, os []api.Outlet) {
	var rows [][]string
	for _, o := range os {
		rows = append(rows, []string{o.Name + originNote(o.Origin), o.Target, strconv.FormatInt(o.Active, 10), strconv.FormatInt(o.Total, 10), size(o.BytesIn), size(o.BytesOut)})
	}
	table(w, "No outlets; create one with: adjacent tcp-outlet create --to [HOST:]PORT", outletHeader, rows)
}

// inletTable lists inlets by the name tcp-inlet delete takes; a transparent inlet's listen
// column names its device. Under the table, why each inlet's last connection was refused.
func inletTable(w io.Writer, ins []api.Inlet) {
	var rows [][]string
	for _, in := range ins {
		rows = append(rows, []string{in.Name + originNote(in.Origin), in.Listen + transparentNote(in), in.Route, upDown(in.Up),
			strconv.FormatInt(in.Active, 10), strconv.FormatInt(in.Total, 10), strconv.FormatInt(in.Refused, 10), size(in.BytesIn), size(in.BytesOut)})
	}
	table(w, "No inlets; create one with: adjacent tcp-inlet create --from [HOST:]PORT --via RELAY", inletHeader, rows)
	for _, in := range ins {
		if in.LastRefusal != "" && in.LastRefusalAt != nil {
			fmt.Fprintf(w, "%s: %s, the last %s: %s\n", in.Name, count(in.Refused, "connection refused", "connections refused"), ago(*in.LastRefusalAt), in.LastRefusal)
		}
		if in.Dropped > 0 {
			fmt.Fprintf(w, "%s: %s of packets dropped under back-pressure (the clients' TCP sent them again)\n", in.Name, count(in.Dropped, "batch", "batches"))
		}
	}
}

func inletCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "tcp-inlet",
		Short:   "TCP inlets: local listeners whose connections go through portals",
		Example: "  adjacent tcp-inlet create --from 15432 --via postgres\n  adjacent tcp-inlet list",
	}
	var req api.CreateInlet
	create := &cobra.Command{
		Use:   "create --from [HOST:]PORT (--via RELAY [--to OUTLET] | --to ROUTE) [--tun [--raw] [--hosts-file PATH]]",
		Short: "Listen on [HOST:]PORT and carry each connection to an outlet",
		Long: `Listen on [HOST:]PORT and carry each connection to an outlet.

Before answering, the node opens the path once and asks the outlet whether it would take a
connection from this node (without connecting to its target): a relay or outlet that does not
exist, or refuses this node, fails the create with the reason. --no-wait skips the check, for
a path that comes later.

With --tun the inlet is transparent: clients connect to HOST:PORT itself, which the node
serves on its TUN device. HOST is an IP address (IPv4 or IPv6), or a name that the node maps
to an address from --address-range and writes into a managed block of --hosts-file. It needs
CAP_NET_ADMIN: run the node as root or as the system service.

With --tun --raw the inlet is in packet mode: no stack in either node terminates the client's
TCP. Its segments travel, batched, to the outlet's node, which injects them toward the target
through a raw socket (it needs CAP_NET_RAW and CAP_NET_ADMIN for its nftables rules), so the
client's and the server's kernels talk TCP to each other. An outlet's node that cannot do
this refuses, and tcp-inlet list shows why.`,
		Example: `  adjacent tcp-inlet create --from 15432 --via postgres
  adjacent tcp-inlet create --from 15432 --to /ip4/10.0.0.2/tcp/4000/secure/api/service/outlet
  adjacent tcp-inlet create --from db.bank.internal:5432 --via postgres --tun
  adjacent tcp-inlet create --from db.bank.internal:5432 --via postgres --tun --raw`,
		Args: exactArgs(0, "adjacent tcp-inlet create --from [HOST:]PORT (--via RELAY [--to OUTLET] | --to ROUTE) [--allow EXPR] [--tun [--raw] [--hosts-file PATH]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.From == "" {
				return fmt.Errorf("tcp-inlet create needs --from [HOST:]PORT, e.g. --from 15432")
			}
			if (req.HostsFile != "" || req.AddressRange != "" || req.Raw) && !req.Tun {
				return fmt.Errorf("tcp-inlet create: --hosts-file, --address-range and --raw go with --tun: add --tun, and give --from the HOST:PORT clients connect to")
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
			var in api.Inlet
			if err := g.call(cmd, "POST", "/v1/inlets", req, &in); err != nil {
				return err
			}
			return g.print(in, func(w io.Writer) {
				kind := "Transparent inlet"
				if in.Raw {
					kind = "Transparent packet-mode inlet"
				}
				switch {
				case in.Host != "":
					fmt.Fprintf(w, "%s on %s (%s in %s, device %s), connected through %s\n", kind, in.Listen, in.Host, in.HostsFile, in.Tun, in.Route)
				case in.Tun != "":
					fmt.Fprintf(w, "%s on %s (device %s), connected through %s\n", kind, in.Listen, in.Tun, in.Route)
				default:
					if req.NoWait {
						fmt.Fprintf(w, "Inlet listening on %s, through %s (its path not checked: --no-wait)\n", in.Listen, in.Route)
						return
					}
					fmt.Fprintf(w, "Inlet listening on %s, connected through %s\n", in.Listen, in.Route)
				}
			})
		},
	}
	create.Flags().StringVar(&req.From, "from", "", "[HOST:]PORT to listen on (host defaults to 127.0.0.1)")
	create.Flags().StringVar(&req.Via, "via", "", "relay at the project's hub behind which the outlet is")
	create.Flags().StringVar(&req.To, "to", "", "with --via: the outlet's name (default outlet); without: a route to an outlet")
	create.Flags().StringVar(&req.Allow, "allow", "", "policy the outlet's node must satisfy (default: project members)")
	create.Flags().BoolVar(&req.NoWait, "no-wait", false, "create the inlet without checking its path first (for a relay or outlet that comes later)")
	create.Flags().BoolVar(&req.Tun, "tun", false, "transparent: serve HOST:PORT itself on the node's TUN device (needs CAP_NET_ADMIN)")
	create.Flags().BoolVar(&req.Raw, "raw", false, "with --tun: packet mode, the clients' own TCP segments travel to the outlet (its node needs CAP_NET_RAW)")
	create.Flags().StringVar(&req.HostsFile, "hosts-file", "", "with --tun and a host name: the hosts file to map it in (default /etc/hosts)")
	create.Flags().StringVar(&req.AddressRange, "address-range", "", "with --tun and a host name: where its address comes from (default 100.127.0.0/16)")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List this node's inlets, whether their path is up, and their traffic",
		Example: "  adjacent tcp-inlet list\n  adjacent tcp-inlet list -o json",
		Args:    exactArgs(0, "adjacent tcp-inlet list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ins []api.Inlet
			if err := g.get(cmd, "/v1/inlets", &ins); err != nil {
				return err
			}
			return g.print(ins, func(w io.Writer) { inletTable(w, ins) })
		},
	}
	cmd.AddCommand(create, list, deleteCommand(g, "tcp-inlet", "NAME", "/v1/inlets/", "Inlet",
		"Delete an inlet (by its name as in tcp-inlet list; a transparent one also by its address)",
		"  adjacent tcp-inlet delete 127.0.0.1:15432\n  adjacent tcp-inlet delete db.bank.internal:5432"))
	return cmd
}

// transparentNote describes a transparent inlet in listings.
func transparentNote(in api.Inlet) string {
	if in.Raw {
		in.Tun += ", packet mode"
	}
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
func deleteCommand(g *globals, resource, arg, path, what, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:     "delete " + arg,
		Short:   short,
		Example: example,
		Args:    exactArgs(1, "adjacent "+resource+" delete "+arg),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.call(cmd, "DELETE", path+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return g.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "%s %s deleted\n", what, args[0]) })
		},
	}
}

func statusCommand(g *globals) *cobra.Command {
	var (
		watch    bool
		interval time.Duration
		frames   int
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "The node at a glance: identity, project, inlets, outlets, relays, channels",
		Long: `The node at a glance: its identity and addresses, its project, its inlets and outlets with
their traffic, the relays (on the hub: every relay registered there, its owner and clients;
on a member: those it holds) and the number of secure channels.

With --watch it prints, every --interval, the rates of each inlet and outlet (bytes per
second in and out) and of each relay (what its clients send through it), until interrupted
or --count frames; with --output json one object a line.`,
		Example: "  adjacent status\n  adjacent status -o json\n  adjacent status --watch --interval 2s",
		Args:    exactArgs(0, "adjacent status [--watch [--interval DUR] [--count N]]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if watch {
				return g.watchStatus(cmd, interval, frames)
			}
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
				fmt.Fprintf(w, "\n%s\n", count(len(st.Inlets), "inlet"))
				if len(st.Inlets) > 0 {
					inletTable(w, st.Inlets)
				}
				fmt.Fprintf(w, "\n%s\n", count(len(st.Outlets), "outlet"))
				if len(st.Outlets) > 0 {
					outletTable(w, st.Outlets)
				}
				if pk := st.Packets; pk != nil {
					fmt.Fprintf(w, "packet mode: %s open, %d opened, %d refused; %d packets kept from the kernel's TCP, %d RSTs it sent anyway (dropped); %d batches dropped under back-pressure\n",
						count(pk.Flows, "flow"), pk.Opened, pk.Refused, pk.Diverted, pk.KernelRSTs, pk.Dropped)
				}
				fmt.Fprintf(w, "\n%s\n", count(len(st.Relays), "relay"))
				if len(st.Relays) > 0 {
					relayTable(w, st.Relays)
				}
				fmt.Fprintf(w, "\n%s\n", count(len(st.Channels), "secure channel"))
			})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "print live rates per inlet, outlet and relay every --interval")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with --watch: how often")
	cmd.Flags().IntVar(&frames, "count", 0, "with --watch: stop after this many frames (default: until interrupted)")
	return cmd
}
