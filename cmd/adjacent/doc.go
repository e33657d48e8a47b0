// Command adjacent is the CLI and the node daemon entry point. It is thin: it parses flags,
// calls the node's local API or the control packages, and prints the answer as text or,
// with --output json, as JSON. Commands that change something start the node in the
// background when it is not running; commands that only read (lists, show, status) do not.
//
// One output style, in output.go: sizes for people ("79 B", "20 MB"), counts with their
// noun in the right number, lists as tables with a header or one sentence when empty. JSON
// is the API's types as they are: durations as Go duration text ("1h0m0s"), times as
// RFC 3339. Exit codes: 0, 1 when the command failed, 2 when the command line is wrong; an
// error is one line on stderr, or with --output json the object
// {"error": "...", "exit_code": N} on stderr.
//
// The system service's commands: `config check` validates a config file here (control/config),
// `config show` and `reload` ask the running node; `service install` and `uninstall`
// (service.go) write the unit and sysusers entry of package dist, the directories and the
// config below / (or a staged --root), and call systemctl only when systemd is PID 1.
//
// The node reads $ADJACENT_REHANDSHAKE_AFTER (a duration, default 1h): how old a channel's
// keys get before a fresh handshake replaces them. Tests shorten it so that re-handshakes
// happen during their runs. The reliability tests of issue 16 (TestImpairedHub,
// the kill tests in faults_test.go, TestSoak) write rows of `make reliability`'s table.
package main
