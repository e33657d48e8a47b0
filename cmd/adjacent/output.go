package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
)

// One output style for every command: sizes as "79 B" or "20 MB", counts with their noun in
// the right number, lists as tables with a header (or one sentence when empty), and under
// --output json the API's objects as they are (durations as text like "1h0m0s", times as
// RFC 3339) and errors as {"error": "...", "exit_code": N} on stderr.

// Exit codes.
const (
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong: unknown command or flag, wrong arguments
)

// usageError is a mistake in the command line.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode is the exit code for err.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

// jsonError is an error under --output json.
type jsonError struct {
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
}

// printError writes err as one line on stderr, or as a JSON object with json.
func printError(w io.Writer, err error, asJSON bool) int {
	code, msg := exitCode(err), oneLine(err.Error())
	if asJSON {
		b, _ := json.Marshal(jsonError{Error: msg, ExitCode: code})
		fmt.Fprintf(w, "%s\n", b)
	} else {
		fmt.Fprintln(w, "adjacent: "+msg)
	}
	return code
}

// wantsJSON reports whether a command line asks for --output json, for errors that happen
// before or while its flags are parsed.
func wantsJSON(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case a == "-ojson" || a == "--output=json" || a == "-o=json":
			return true
		case (a == "-o" || a == "--output") && i+1 < len(args) && args[i+1] == "json":
			return true
		}
	}
	return false
}

// size is a byte count for people: "79 B", "20 MB".
func size[T int64 | uint64](n T) string {
	if n < 0 {
		return "0 B"
	}
	return humanize.Bytes(uint64(n))
}

// rate is bytes per second for people: "1.2 MB/s".
func rate(bytes uint64, d time.Duration) string {
	if d <= 0 {
		return "0 B/s"
	}
	return humanize.Bytes(uint64(float64(bytes)/d.Seconds())) + "/s"
}

// count is n with its noun in the right number: "1 secure channel", "2 secure channels".
// The plural is the noun with an s unless given.
func count[T int | int64 | uint64](n T, noun string, plural ...string) string {
	if n == 1 {
		return "1 " + noun
	}
	p := noun + "s"
	if len(plural) > 0 {
		p = plural[0]
	}
	return fmt.Sprintf("%d %s", n, p)
}

// table writes rows under a header, in aligned columns; with no rows it writes empty (a
// sentence that says what to do) instead.
func table(w io.Writer, empty string, header []string, rows [][]string) {
	if len(rows) == 0 {
		fmt.Fprintln(w, empty)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// orNone is s, or "(none)" when it is empty.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// ago is how long ago t was, to the second.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// exactArgs is cobra.ExactArgs with a message that names the command and says what to type.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("%s takes %s, got %d; usage: %s", cmd.CommandPath(), count(n, "argument"), len(args), usage)
		}
		return nil
	}
}

// maxArgs is cobra.MaximumNArgs with the same kind of message.
func maxArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return usagef("%s takes at most %s, got %d; usage: %s", cmd.CommandPath(), count(n, "argument"), len(args), usage)
		}
		return nil
	}
}

// groups makes every command that only holds subcommands refuse what is not one of them
// (cobra would print the help and exit 0), and print its help when called alone.
func groups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		groups(c)
	}
	if !cmd.HasSubCommands() {
		return
	}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		c.SuggestionsMinimumDistance = 2
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return usagef("%s; see: %s --help", msg, c.CommandPath())
	}
	if cmd.Run == nil && cmd.RunE == nil {
		cmd.RunE = func(c *cobra.Command, args []string) error { return c.Help() }
	}
}
