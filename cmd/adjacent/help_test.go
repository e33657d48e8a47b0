package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasHelp: every command has a one-line summary and an example, and the
// commands whose use needs more than a line have a long help.
func TestEveryCommandHasHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		if c.Short == "" || strings.Contains(c.Short, "\n") {
			t.Errorf("%s: no one-line summary (Short = %q)", c.CommandPath(), c.Short)
		}
		if c.Example == "" {
			t.Errorf("%s: no example", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(&bytes.Buffer{}))
	for _, path := range [][]string{{"relay"}, {"policy"}, {"project"}, {"project", "create"}, {"tcp-inlet", "create"}, {"status"}} {
		c, _, err := newRoot(&bytes.Buffer{}).Find(path)
		if err != nil || c.Long == "" {
			t.Errorf("adjacent %s: no long help (%v)", strings.Join(path, " "), err)
		}
	}
}
