package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	commit := "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		want     Info
		wantLine string
	}{{
		name: "tagged clean build",
		bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/m", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: commit}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "false"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}},
		want: Info{Module: "example.com/m", Version: "v1.2.3", Commit: commit, CommitTime: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
			Go: "go1.26.8", Platform: "linux/amd64"},
		wantLine: "adjacent v1.2.3 (commit 0123456789ab) go1.26.8 linux/amd64",
	}, {
		name: "dirty development build",
		bi: debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/m", Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: commit}, {Key: "vcs.modified", Value: "true"}}},
		want:     Info{Module: "example.com/m", Version: "(devel)", Commit: commit, Dirty: true, Go: "go1.26.8"},
		wantLine: "adjacent (devel) (commit 0123456789ab, dirty) go1.26.8",
	}, {
		name:     "no VCS information",
		bi:       debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/m"}},
		want:     Info{Module: "example.com/m", Version: "(devel)", Go: "go1.26.8"},
		wantLine: "adjacent (devel) (commit unknown) go1.26.8",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := FromBuildInfo(&tc.bi)
			if got != tc.want {
				t.Errorf("FromBuildInfo = %+v, want %+v", got, tc.want)
			}
			if line := got.String(); line != tc.wantLine {
				t.Errorf("String() = %q, want %q", line, tc.wantLine)
			}
		})
	}
}

// TestRead: the test binary has build information, with this toolchain's Go version.
func TestRead(t *testing.T) {
	got := Read()
	if got.Go != runtime.Version() || got.Version == "" || !strings.HasPrefix(got.String(), "adjacent ") {
		t.Errorf("Read() = %+v, want Go %s and a version", got, runtime.Version())
	}
}
