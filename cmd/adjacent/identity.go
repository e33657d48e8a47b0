package main

import (
	"fmt"
	"io"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func identityCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "identity", Short: "Create and show identities (Ed25519 keys with a change history)",
		Example: "  adjacent identity show\n  adjacent identity list"}
	var full bool
	show := &cobra.Command{
		Use:     "show [NAME]",
		Short:   "Show an identity's identifier (the node's own without NAME)",
		Example: "  adjacent identity show\n  adjacent identity show backup --full",
		Args:    maxArgs(1, "adjacent identity show [NAME] [--full]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			var id api.Identity
			path := "/v1/identities/" + url.PathEscape(name)
			if full {
				path += "?full=1"
			}
			if err := g.get(cmd, path, &id); err != nil {
				return err
			}
			return g.print(id, func(w io.Writer) {
				fmt.Fprintln(w, id.Identifier)
				if full {
					fmt.Fprintf(w, "name:    %s\nchanges: %d\nhistory: %s\n", id.Name, id.Changes, id.History)
				}
			})
		},
	}
	show.Flags().BoolVar(&full, "full", false, "also print the encoded change history")
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a new identity in this home's vault",
		Example: "  adjacent identity create backup\n  adjacent node create --identity backup",
		Args:    exactArgs(1, "adjacent identity create NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id api.Identity
			if err := g.call(cmd, "POST", "/v1/identities", api.CreateIdentity{Name: args[0]}, &id); err != nil {
				return err
			}
			return g.print(id, func(w io.Writer) { fmt.Fprintln(w, id.Identifier) })
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List this home's identities",
		Example: "  adjacent identity list\n  adjacent identity list -o json",
		Args:    exactArgs(0, "adjacent identity list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids []api.Identity
			if err := g.get(cmd, "/v1/identities", &ids); err != nil {
				return err
			}
			var rows [][]string
			for _, id := range ids {
				rows = append(rows, []string{id.Name, id.Identifier, map[bool]string{true: "yes", false: "no"}[id.Default]})
			}
			return g.print(ids, func(w io.Writer) {
				table(w, "No identities; create one with: adjacent identity create NAME", []string{"NAME", "IDENTIFIER", "THIS NODE"}, rows)
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate [NAME]",
		Short: "Replace an identity's primary key (the node's own without NAME); the identifier stays",
		Long: `Replace an identity's primary key, as after a suspected compromise: a change signed by the
old and the new key is added to its history and the old private key is deleted from the vault.
The identifier does not change. For the node's own identity, new secure channels use a new
Noise static key attested by the new key; open channels and portals keep running and show
peers the new history. On a hub, the credential-signing key is attested again and members
learn the new history from the credentials the hub signs.`,
		Example: "  adjacent identity rotate\n  adjacent identity rotate backup -o json",
		Args:    maxArgs(1, "adjacent identity rotate [NAME]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "-"
			if len(args) == 1 {
				name = args[0]
			}
			var id api.Identity
			if err := g.call(cmd, "POST", "/v1/identities/"+url.PathEscape(name)+"/rotate", nil, &id); err != nil {
				return err
			}
			return g.print(id, func(w io.Writer) {
				fmt.Fprintf(w, "rotated %s: identifier %s (unchanged), %d changes, primary key %s\n", id.Name, id.Identifier, id.Changes, id.PrimaryKey)
			})
		},
	}
	cmd.AddCommand(create, show, list, rotate)
	return cmd
}
