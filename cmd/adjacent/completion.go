package main

import (
	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/control/api"
)

// Shell completion of resource names from the running node: `adjacent completion bash`
// (cobra's) writes the script; the names come from the node's lists, and a node that does
// not run completes nothing rather than being started.

// complete completes the first argument of cmd with names of path's resources.
func (g *globals) complete(path string, names func(get func(out any) error) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names(func(out any) error { return g.get(cmd, path, out) }), cobra.ShellCompDirectiveNoFileComp
	}
}

func inletNames(get func(any) error) []string {
	var ins []api.Inlet
	if get(&ins) != nil {
		return nil
	}
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.Name)
	}
	return out
}

func outletNames(get func(any) error) []string {
	var os []api.Outlet
	if get(&os) != nil {
		return nil
	}
	out := make([]string, 0, len(os))
	for _, o := range os {
		out = append(out, o.Name)
	}
	return out
}

func relayNames(get func(any) error) []string {
	var rs []api.Relay
	if get(&rs) != nil {
		return nil
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func channelNames(get func(any) error) []string {
	var chs []api.Channel
	if get(&chs) != nil {
		return nil
	}
	out := make([]string, 0, len(chs))
	for _, c := range chs {
		out = append(out, c.Address)
	}
	return out
}

func identityNames(get func(any) error) []string {
	var ids []api.Identity
	if get(&ids) != nil {
		return nil
	}
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.Name)
	}
	return out
}

// completeResources wires the completions into the command tree.
func (g *globals) completeResources(root *cobra.Command) {
	set := func(path []string, f cobra.CompletionFunc) {
		if c, _, err := root.Find(path); err == nil && c.Name() == path[len(path)-1] {
			c.ValidArgsFunction = f
		}
	}
	set([]string{"tcp-inlet", "delete"}, g.complete("/v1/inlets", inletNames))
	set([]string{"tcp-outlet", "delete"}, g.complete("/v1/outlets", outletNames))
	set([]string{"relay", "delete"}, g.complete("/v1/relays", relayNames))
	set([]string{"secure-channel", "delete"}, g.complete("/v1/secure-channels", channelNames))
	set([]string{"identity", "show"}, g.complete("/v1/identities", identityNames))
	if c, _, err := root.Find([]string{"policy", "create"}); err == nil {
		c.RegisterFlagCompletionFunc("resource", func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			get := func(path string) func(any) error { return func(out any) error { return g.get(cmd, path, out) } }
			names := append(append(inletNames(get("/v1/inlets")), outletNames(get("/v1/outlets"))...), relayNames(get("/v1/relays"))...)
			return names, cobra.ShellCompDirectiveNoFileComp
		})
		c.RegisterFlagCompletionFunc("resource-type", cobra.FixedCompletions([]string{"echo", "relay", "tcp-outlet", "tcp-inlet"}, cobra.ShellCompDirectiveNoFileComp))
	}
}
