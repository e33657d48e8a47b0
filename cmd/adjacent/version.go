package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/adjacentnet/adjacent/internal/buildinfo"
)

func versionCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version of this binary",
		Example: "  adjacent version\n  adjacent --version -o json",
		Args:    exactArgs(0, "adjacent version"),
		RunE:    func(cmd *cobra.Command, args []string) error { return g.printVersion() },
	}
}

// versionFlag gives the root command --version, which prints what `adjacent version` does;
// without it the root command prints its help, as it did before it had a flag of its own.
func versionFlag(g *globals, root *cobra.Command) {
	var show bool
	root.Flags().BoolVar(&show, "version", false, "print the version and exit")
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if show {
			return g.printVersion()
		}
		return cmd.Help()
	}
}

func (g *globals) printVersion() error {
	info := buildinfo.Read()
	return g.print(info, func(w io.Writer) { fmt.Fprintln(w, info) })
}
