package main

import (
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func secureChannelCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "secure-channel", Short: "Create, list and delete secure channels",
		Example: "  adjacent secure-channel create --to /ip4/10.0.0.1/tcp/4000/service/api\n  adjacent secure-channel list"}
	var (
		to         string
		authorized []string
		timeout    time.Duration
	)
	create := &cobra.Command{
		Use:   "create --to ROUTE",
		Short: "Open a mutually authenticated Noise XX channel to the listener at the end of ROUTE",
		Example: `  adjacent secure-channel create --to /ip4/10.0.0.1/tcp/4000/service/api
  adjacent message send hello --to /service/sc.0123456789abcdef/service/echo`,
		Args: exactArgs(0, "adjacent secure-channel create --to ROUTE [--authorized IDENTIFIER]..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("secure-channel create needs --to ROUTE, e.g. --to /ip4/10.0.0.1/tcp/4000/service/api")
			}
			var ch api.Channel
			req := api.CreateChannel{To: to, Authorized: authorized, Timeout: timeout}
			if err := g.call(cmd, "POST", "/v1/secure-channels", req, &ch); err != nil {
				return err
			}
			return g.print(ch, func(w io.Writer) { fmt.Fprintln(w, ch.Address) })
		},
	}
	create.Flags().StringVar(&to, "to", "", "route to a secure-channel listener, e.g. /ip4/10.0.0.1/tcp/4000/service/api")
	create.Flags().StringArrayVar(&authorized, "authorized", nil, "accept only this peer identifier (repeatable)")
	create.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the handshake")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the node's secure channels",
		Example: "  adjacent secure-channel list\n  adjacent secure-channel list -o json",
		Args:    exactArgs(0, "adjacent secure-channel list"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var chs []api.Channel
			if err := g.get(cmd, "/v1/secure-channels", &chs); err != nil {
				return err
			}
			var rows [][]string
			for _, ch := range chs {
				role := "responder"
				if ch.Initiator {
					role = "initiator"
				}
				rows = append(rows, []string{ch.Address, role, ch.Peer, strconv.FormatUint(ch.MessagesIn, 10), strconv.FormatUint(ch.MessagesOut, 10), size(ch.BytesIn), size(ch.BytesOut)})
			}
			return g.print(chs, func(w io.Writer) {
				table(w, "No secure channels; open one with: adjacent secure-channel create --to ROUTE",
					[]string{"CHANNEL", "ROLE", "PEER", "MESSAGES IN", "MESSAGES OUT", "IN", "OUT"}, rows)
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete ADDRESS",
		Short:   "Close a secure channel (ADDRESS as printed by create or list)",
		Example: "  adjacent secure-channel delete /service/sc.0123456789abcdef",
		Args:    exactArgs(1, "adjacent secure-channel delete /service/sc.ADDRESS"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.call(cmd, "DELETE", "/v1/secure-channels/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			return g.print(map[string]string{"deleted": args[0]}, func(w io.Writer) { fmt.Fprintf(w, "Closed %s\n", args[0]) })
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
