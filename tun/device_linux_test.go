package tun

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const noCapEnv = "ADJACENT_TUN_TEST_NOCAP"

// TestNeedsNetAdmin: without CAP_NET_ADMIN, Create fails with the one error that says how to
// grant it. It runs this test binary again with the capability dropped.
func TestNeedsNetAdmin(t *testing.T) {
	if os.Getenv(noCapEnv) != "" {
		dev, err := Create(Config{})
		if err == nil {
			dev.Close()
			t.Fatal("Create succeeded without CAP_NET_ADMIN")
		}
		if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "setcap cap_net_admin+ep") {
			t.Fatalf("Create = %v, want ErrPermission", err)
		}
		return
	}
	capsh, err := exec.LookPath("capsh")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and capsh to drop CAP_NET_ADMIN")
	}
	cmd := exec.Command(capsh, "--drop=cap_net_admin", "--", "-c", `exec "$0" -test.run '^TestNeedsNetAdmin$' -test.v`, os.Args[0])
	cmd.Env = append(os.Environ(), noCapEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestNeedsNetAdmin") {
		t.Fatalf("without CAP_NET_ADMIN: %v\n%s", err, out)
	}
}
