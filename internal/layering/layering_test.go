package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/adjacentnet/adjacent"

// allowed lists, per top-level directory, the top-level directories its packages may import.
// A directory may always import itself and internal.
var allowed = map[string][]string{
	"cmd":           {"control", "dataplane", "stack", "securechannel", "tun", "routing", "dist"},
	"control":       {"dataplane", "stack", "securechannel", "tun", "routing"},
	"dataplane":     {"securechannel", "tun", "routing"},
	"stack":         {"tun", "securechannel", "routing"},
	"securechannel": {"routing"},
	"tun":           {"routing"},
	"routing":       {},
	"internal":      {},
	"dist":          {}, // the files installed beside the binary (systemd unit), as data
	"bench":         {"cmd", "control", "dataplane", "stack", "securechannel", "tun", "routing"},
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		from := top(fields[0])
		ok, known := allowed[from]
		if !known {
			t.Errorf("package %s is in a top-level directory the layering does not know; add it to DESIGN.md §2 and this test", fields[0])
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := top(imp)
			if to == from || to == "internal" || contains(ok, to) {
				continue
			}
			t.Errorf("%s imports %s: %s may not import %s (DESIGN.md §2)", fields[0], imp, from, to)
		}
	}
}

func top(pkg string) string {
	rest := strings.TrimPrefix(pkg, module+"/")
	first, _, _ := strings.Cut(rest, "/")
	return first
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
