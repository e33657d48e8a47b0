package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/adjacentnet/adjacent/internal/buildinfo"
)

// TestVersion: `adjacent version` and `adjacent --version` print the same line, naming the Go
// version; --output json gives the fields; the bare command still prints the help.
func TestVersion(t *testing.T) {
	line := mustCLI(t, "version")
	if flag := mustCLI(t, "--version"); flag != line {
		t.Errorf("--version = %q, want what version prints: %q", flag, line)
	}
	if !strings.HasPrefix(line, "adjacent ") || !strings.Contains(line, runtime.Version()) {
		t.Errorf("version = %q, want adjacent VERSION ... %s", line, runtime.Version())
	}
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(mustCLI(t, "version", "--output", "json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Module != "github.com/adjacentnet/adjacent" || info.Go != runtime.Version() || info.Version == "" {
		t.Errorf("version --output json = %+v", info)
	}
	if flag := mustCLI(t, "--version", "-o", "json"); !strings.Contains(flag, `"go": "`+runtime.Version()) {
		t.Errorf("--version -o json = %s", flag)
	}
	if help := mustCLI(t); !strings.Contains(help, "Available Commands") {
		t.Errorf("adjacent without arguments = %q, want the help", help)
	}
	if _, errOut, code := cli(t, "nosuchcommand"); code == 0 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("adjacent nosuchcommand: exit %d, %q; want unknown command", code, errOut)
	}
}
