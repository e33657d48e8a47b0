package main

import (
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func relayCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "relay", Short: "Relays at the project's hub, through which other members reach this node"}
	create := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Register the relay NAME (default \"default\") at the hub, forwarding to this node",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "default"
			if len(args) == 1 {
				name = args[0]
			}
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var r api.Relay
			if err := c.Do(cmd.Context(), "POST", "/v1/relays", api.CreateRelay{Name: name}, &r); err != nil {
				return err
			}
			return g.print(r, func(w io.Writer) { fmt.Fprintf(w, "Relay %s registered at the hub: %s\n", r.Name, r.Address) })
		},
	}
	list := &cobra.Command{
		Use:  "list",
		Args: exactArgs(0, "adjacent relay list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var rs []api.Relay
			if err := c.Do(cmd.Context(), "GET", "/v1/relays", nil, &rs); err != nil {
				return err
			}
			return g.print(rs, func(w io.Writer) {
				for _, r := range rs {
					fmt.Fprintf(w, "%s\t%s\t%s\n", r.Name, r.Address, r.Owner)
				}
			})
		},
	}
	del := &cobra.Command{
		Use:  "delete NAME",
		Args: exactArgs(1, "adjacent relay delete NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.Do(cmd.Context(), "DELETE", "/v1/relays/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return g.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Relay %s deleted\n", args[0]) })
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func policyCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Attribute-based policies of resources (echo, relays, inlets, outlets)"}
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
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var p api.Policy
			if err := c.Do(cmd.Context(), "POST", "/v1/policies", req, &p); err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) { fmt.Fprintf(w, "Policy of %s %s: %s\n", p.Kind, p.Resource, p.Expression) })
		},
	}
	create.Flags().StringVar(&resourceType, "resource-type", "", "echo, relay, tcp-outlet or tcp-inlet")
	create.Flags().StringVar(&resource, "resource", "", "name of one resource (a relay, outlet or inlet)")
	create.Flags().StringVar(&allow, "allow", "", "policy expression over subject.* attributes")
	list := &cobra.Command{
		Use:  "list",
		Args: exactArgs(0, "adjacent policy list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			var ps []api.Policy
			if err := c.Do(cmd.Context(), "GET", "/v1/policies", nil, &ps); err != nil {
				return err
			}
			return g.print(ps, func(w io.Writer) {
				if len(ps) == 0 {
					fmt.Fprintln(w, "No policies set: every resource admits project members with a valid credential.")
				}
				for _, p := range ps {
					fmt.Fprintf(w, "%s %s\t%s\n", p.Kind, p.Resource, p.Expression)
				}
			})
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}
