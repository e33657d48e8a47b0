package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func relayCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Relays at the project's hub, through which other members reach this node",
		Long: `A relay is a name at the project's hub that forwards to the member that registered it, so
that other members reach that member's outlets without a route to it: the member behind a
firewall dials out to the hub, and inlets elsewhere give --via NAME. On the hub, relay list
shows every relay registered there, its owner and the members that used it.`,
		Example: "  adjacent relay create postgres\n  adjacent relay list",
	}
	create := &cobra.Command{
		Use:     "create [NAME]",
		Short:   "Register the relay NAME (default \"default\") at the hub, forwarding to this node",
		Example: "  adjacent relay create postgres\n  adjacent tcp-inlet create --from 15432 --via postgres   # on another member",
		Args:    maxArgs(1, "adjacent relay create [NAME]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "default"
			if len(args) == 1 {
				name = args[0]
			}
			var r api.Relay
			if err := g.call(cmd, "POST", "/v1/relays", api.CreateRelay{Name: name}, &r); err != nil {
				return err
			}
			return g.print(r, func(w io.Writer) { fmt.Fprintf(w, "Relay %s registered at the hub: %s\n", r.Name, r.Address) })
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the relays at the hub, their owners and (on the hub) their clients",
		Example: "  adjacent relay list\n  adjacent relay list -o json",
		Args:    exactArgs(0, "adjacent relay list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var rs []api.Relay
			if err := g.get(cmd, "/v1/relays", &rs); err != nil {
				return err
			}
			return g.print(rs, func(w io.Writer) { relayTable(w, rs) })
		},
	}
	cmd.AddCommand(create, list, deleteCommand(g, "relay", "NAME", "/v1/relays/", "Relay", "Unregister a relay at the hub", "  adjacent relay delete postgres"))
	return cmd
}

// relayTable lists relays in relay list and status.
func relayTable(w io.Writer, rs []api.Relay) {
	var rows [][]string
	for _, r := range rs {
		var clients []string
		for _, c := range r.Clients {
			clients = append(clients, c.Identifier)
		}
		rows = append(rows, []string{r.Name + originNote(r.Origin), orNone(r.Owner), count(len(r.Clients), "client"), orNone(strings.Join(clients, ", "))})
	}
	table(w, "No relays; register one with: adjacent relay create NAME", []string{"RELAY", "OWNER", "CLIENTS", "IDENTIFIERS"}, rows)
}

func policyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Attribute-based policies of resources (echo, relays, inlets, outlets)",
		Long: `A policy is an expression over the attributes of the peer's credential (subject.*). It
applies to a resource type (every relay, every outlet, ...) or to one resource by name; without
one, a resource admits project members with a valid credential.`,
		Example: "  adjacent policy create --resource-type tcp-outlet --allow '(= subject.role \"analyst\")'\n  adjacent policy list",
	}
	var (
		resourceType, resource, allow string
	)
	create := &cobra.Command{
		Use:   "create (--resource-type TYPE | --resource NAME) --allow EXPR",
		Short: "Set the policy of a resource type or of one resource",
		Example: `  adjacent policy create --resource-type tcp-outlet --allow '(= subject.role "analyst")'
  adjacent policy create --resource postgres --allow '(and (= subject.project_member "true") (= subject.team "data"))'`,
		Args: exactArgs(0, "adjacent policy create (--resource-type TYPE | --resource NAME) --allow EXPR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.Policy{Expression: allow}
			switch {
			case (resourceType == "") == (resource == ""):
				return fmt.Errorf("policy create: give exactly one of --resource-type TYPE or --resource NAME")
			case allow == "":
				return fmt.Errorf("policy create: give --allow EXPR, e.g. --allow '(= subject.role \"analyst\")'")
			case resourceType != "":
				req.Kind, req.Resource = "type", resourceType
			default:
				req.Kind, req.Resource = "name", resource
			}
			var p api.Policy
			if err := g.call(cmd, "POST", "/v1/policies", req, &p); err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) { fmt.Fprintf(w, "Policy of %s %s: %s\n", p.Kind, p.Resource, p.Expression) })
		},
	}
	create.Flags().StringVar(&resourceType, "resource-type", "", "echo, relay, tcp-outlet or tcp-inlet")
	create.Flags().StringVar(&resource, "resource", "", "name of one resource (a relay, outlet or inlet)")
	create.Flags().StringVar(&allow, "allow", "", "policy expression over subject.* attributes")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the policies set on this node",
		Example: "  adjacent policy list\n  adjacent policy list -o json",
		Args:    exactArgs(0, "adjacent policy list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ps []api.Policy
			if err := g.get(cmd, "/v1/policies", &ps); err != nil {
				return err
			}
			var rows [][]string
			for _, p := range ps {
				rows = append(rows, []string{p.Kind, p.Resource, p.Expression})
			}
			return g.print(ps, func(w io.Writer) {
				table(w, "No policies; every resource admits project members with a valid credential. Set one with: adjacent policy create",
					[]string{"KIND", "RESOURCE", "POLICY"}, rows)
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}
