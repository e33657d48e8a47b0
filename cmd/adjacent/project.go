package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
	"github.com/adjacentnet/adjacent/control/authority"
)

func projectCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "project",
		Short: "Run a project's hub (authority and relays), make tickets, manage members",
		Long: `A project is a set of nodes that trust one authority. Its hub is the node that ran project
create: it issues credentials to members, makes enrollment tickets and serves the relays
through which members reach each other. Other nodes join with adjacent enroll TICKET.`,
		Example: "  adjacent project create acme --listen 0.0.0.0:4000 --public-address hub.example.com:4000\n  adjacent project ticket --relay postgres > bank.ticket",
	}
	cmd.AddCommand(projectCreate(g), projectShow(g), projectTicket(g), projectMember(g))
	return cmd
}

func projectCreate(g *globals) *cobra.Command {
	var req api.CreateProject
	cmd := &cobra.Command{
		Use:   "create NAME --listen HOST:PORT",
		Short: "Make this node the hub of a new project: its membership authority and relay service",
		Long: `Make this node the hub of a new project: its membership authority and relay service.

The hub listens on --listen; members dial --public-address (default: the listen address,
which must then be one they can dial, not 0.0.0.0). Everything is checked before the node
starts to listen, and a project create that fails leaves no listener behind.`,
		Example: "  adjacent project create acme --listen 0.0.0.0:4000 --public-address hub.example.com:4000",
		Args:    exactArgs(1, "adjacent project create NAME --listen HOST:PORT [--public-address HOST:PORT]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Name = args[0]
			var p api.Project
			if err := g.call(cmd, "POST", "/v1/project", req, &p); err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) {
				fmt.Fprintf(w, "Project %s created; this node is its hub at %s\nAuthority: %s\nNext: adjacent project ticket > member.ticket\n", p.Name, p.Hub, p.Authority)
			})
		},
	}
	cmd.Flags().StringVar(&req.Listen, "listen", "", "TCP address the hub accepts members on, e.g. 0.0.0.0:4000")
	cmd.Flags().StringVar(&req.PublicAddress, "public-address", "", "HOST:PORT members dial (default: the listen address)")
	cmd.Flags().DurationVar(&req.Lifetime, "credential-lifetime", 0, "lifetime of the credentials the authority issues (default 1h)")
	cmd.Flags().StringVar(&req.Store, "store", "", "keep members and tickets in PostgreSQL: postgres://USER@HOST/DB (default: SQLite in the home)")
	return cmd
}

func projectShow(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "show",
		Short:   "Show the project this node belongs to",
		Example: "  adjacent project show\n  adjacent project show -o json",
		Args:    exactArgs(0, "adjacent project show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.Project
			if err := g.get(cmd, "/v1/project", &p); err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) {
				fmt.Fprintf(w, "Project:    %s (this node: %s)\nAuthority:  %s\nHub:        %s\n", p.Name, p.Role, p.Authority, p.Hub)
				if p.Role == "member" {
					fmt.Fprintf(w, "Connected:  %v\n", p.Connected)
				}
				if p.Lifetime != 0 {
					fmt.Fprintf(w, "Issues:     credentials valid for %s\n", p.Lifetime)
				}
				if !p.CredentialExpires.IsZero() {
					fmt.Fprintf(w, "Credential: expires %s (in %s)\n", p.CredentialExpires.Format(time.RFC3339), time.Until(p.CredentialExpires).Round(time.Second))
				}
			})
		},
	}
}

// attributes parses repeated K=V flags.
func attributes(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--attribute %q: want KEY=VALUE, e.g. --attribute role=analyst", kv)
		}
		m[k] = v
	}
	return m, nil
}

func projectTicket(g *globals) *cobra.Command {
	var (
		req   api.CreateTicket
		attrs []string
	)
	cmd := &cobra.Command{
		Use:   "ticket",
		Short: "Print a one-time enrollment ticket (on the hub, or on a member with the enroller attribute)",
		Example: `  adjacent project ticket --relay postgres > bank.ticket
  adjacent project ticket --attribute role=analyst > analysis.ticket`,
		Args: exactArgs(0, "adjacent project ticket [--attribute K=V]... [--relay NAME] [--usage-count N] [--expires-in DUR] [--enroller]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Attributes, err = attributes(attrs); err != nil {
				return err
			}
			var t api.Ticket
			if err := g.call(cmd, "POST", "/v1/project/tickets", req, &t); err != nil {
				return err
			}
			return g.print(t, func(w io.Writer) { fmt.Fprintln(w, t.Ticket) })
		},
	}
	cmd.Flags().StringArrayVar(&attrs, "attribute", nil, "attribute the member gets, KEY=VALUE (repeatable)")
	cmd.Flags().StringVar(&req.Relay, "relay", "", "relay name the member may create (* for any)")
	uses, expiresIn := authority.DefaultTicketUses, authority.DefaultTicketExpiry
	req.Uses, req.ExpiresIn = &uses, &expiresIn // given as typed: the node refuses what is out of bounds
	cmd.Flags().IntVar(&uses, "usage-count", uses, fmt.Sprintf("how many nodes may enroll with the ticket, at most %d", authority.MaxTicketUses))
	cmd.Flags().DurationVar(&expiresIn, "expires-in", expiresIn, fmt.Sprintf("how long the ticket is valid, at most %v", authority.MaxTicketExpiry))
	cmd.Flags().BoolVar(&req.Enroller, "enroller", false, "the member may make tickets and manage members")
	return cmd
}

func projectMember(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "member", Short: "List, add and delete project members", Example: "  adjacent project member list\n  adjacent project member delete I0123..."}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the project's members and their attributes (on the hub, or on an enroller)",
		Example: "  adjacent project member list\n  adjacent project member list -o json",
		Args:    exactArgs(0, "adjacent project member list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ms []api.Member
			if err := g.get(cmd, "/v1/project/members", &ms); err != nil {
				return err
			}
			var rows [][]string
			for _, m := range ms {
				keys := make([]string, 0, len(m.Attributes))
				for k, v := range m.Attributes {
					keys = append(keys, k+"="+v)
				}
				sort.Strings(keys)
				rows = append(rows, []string{m.Identifier, orNone(strings.Join(keys, " "))})
			}
			return g.print(ms, func(w io.Writer) {
				table(w, "No members; make a ticket with: adjacent project ticket", []string{"MEMBER", "ATTRIBUTES"}, rows)
			})
		},
	}
	var attrs []string
	add := &cobra.Command{
		Use:     "add IDENTIFIER",
		Short:   "Add a node as a member by its identifier, with attributes",
		Example: "  adjacent project member add I0123... --attribute role=analyst",
		Args:    exactArgs(1, "adjacent project member add IDENTIFIER [--attribute K=V]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := attributes(attrs)
			if err != nil {
				return err
			}
			if err := g.call(cmd, "POST", "/v1/project/members", api.Member{Identifier: args[0], Attributes: a}, nil); err != nil {
				return err
			}
			return g.print(map[string]string{"added": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Added %s\n", args[0]) })
		},
	}
	add.Flags().StringArrayVar(&attrs, "attribute", nil, "attribute of the member, KEY=VALUE (repeatable)")
	del := &cobra.Command{
		Use:     "delete IDENTIFIER",
		Short:   "Remove a member: its credential is not renewed and its live channels are closed",
		Example: "  adjacent project member delete I0123...",
		Args:    exactArgs(1, "adjacent project member delete IDENTIFIER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d api.MemberDeleted
			if err := g.call(cmd, "DELETE", "/v1/project/members/"+url.PathEscape(args[0]), nil, &d); err != nil {
				return err
			}
			d.Identifier = args[0]
			return g.print(d, func(w io.Writer) {
				fmt.Fprintf(w, "Deleted %s\n", args[0])
				if d.TicketUsesVoided > 0 {
					fmt.Fprintf(w, "Voided the ticket it enrolled with (%d uses were left): it cannot enroll again with it\n", d.TicketUsesVoided)
				}
			})
		},
	}
	cmd.AddCommand(list, add, del)
	return cmd
}

func enrollCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "enroll TICKET",
		Short:   "Join a project with a ticket (its text, or a file holding it)",
		Example: "  adjacent enroll bank.ticket",
		Args:    exactArgs(1, "adjacent enroll TICKET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			text := args[0]
			if b, err := os.ReadFile(text); err == nil {
				text = string(b)
			} else if !strings.HasPrefix(strings.TrimSpace(text), "adj1:") {
				return fmt.Errorf("enroll: %q is neither a ticket nor a readable file: %v", text, err)
			}
			var p api.Project
			if err := g.call(cmd, "POST", "/v1/enroll", api.Enroll{Ticket: text}, &p); err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) {
				fmt.Fprintf(w, "Enrolled in project %s (hub %s); credential valid until %s\n", p.Name, p.Hub, p.CredentialExpires.Format(time.RFC3339))
			})
		},
	}
}

func credentialCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "credential", Short: "Show the node's project credential", Example: "  adjacent credential show"}
	cmd.AddCommand(&cobra.Command{
		Use:     "show",
		Short:   "Show the node's credential: subject, issuer, validity and attributes",
		Example: "  adjacent credential show\n  adjacent credential show -o json",
		Args:    exactArgs(0, "adjacent credential show"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var cr api.Credential
			if err := g.get(cmd, "/v1/credential", &cr); err != nil {
				return err
			}
			return g.print(cr, func(w io.Writer) {
				fmt.Fprintf(w, "Subject: %s\nIssuer:  %s\nIssued:  %s\nExpires: %s\n", cr.Subject, cr.Issuer, cr.Issued.Format(time.RFC3339), cr.Expires.Format(time.RFC3339))
				keys := make([]string, 0, len(cr.Attributes))
				for k := range cr.Attributes {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "  %s=%s\n", k, cr.Attributes[k])
				}
			})
		},
	})
	return cmd
}
