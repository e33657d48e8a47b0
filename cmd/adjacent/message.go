package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

func messageCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "message", Short: "Send messages along routes",
		Example: "  adjacent message send hello --to /ip4/127.0.0.1/tcp/4000/secure/api/service/echo"}
	var (
		to      string
		timeout time.Duration
	)
	send := &cobra.Command{
		Use:   "send TEXT --to ROUTE",
		Short: "Send TEXT along ROUTE and print the reply",
		Example: `  adjacent message send hello --to /ip4/127.0.0.1/tcp/4000/service/echo
  adjacent message send hello --to /ip4/127.0.0.1/tcp/4000/secure/api/service/echo`,
		Args: exactArgs(1, "adjacent message send TEXT --to ROUTE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return fmt.Errorf("message send needs --to ROUTE, e.g. --to /ip4/127.0.0.1/tcp/4000/service/echo")
			}
			var reply api.MessageReply
			req := api.SendMessage{To: to, Payload: []byte(args[0]), Timeout: timeout}
			if err := g.call(cmd, "POST", "/v1/messages", req, &reply); err != nil {
				return err
			}
			return g.print(map[string]string{"reply": string(reply.Payload)}, func(w io.Writer) {
				fmt.Fprintln(w, string(reply.Payload))
			})
		},
	}
	send.Flags().StringVar(&to, "to", "", "route to send along, e.g. /ip4/10.0.0.1/tcp/4000/service/echo")
	send.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the reply")
	cmd.AddCommand(send)
	return cmd
}
