package buildinfo

import (
	"fmt"
	"runtime/debug"
	"strings"
	"time"
)

// Info is what a binary knows about its own build.
type Info struct {
	// Module is the main module's path.
	Module string `json:"module"`
	// Version is the main module's version: a tag or pseudo-version when built with go
	// install MODULE@VERSION or from a tagged checkout, "(devel)" for a plain go build.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from; empty when the build had no
	// VCS information (go build -buildvcs=false, or outside a repository).
	Commit string `json:"commit,omitempty"`
	// CommitTime is the revision's commit time; zero when unknown.
	CommitTime time.Time `json:"commit_time,omitzero"`
	// Dirty reports uncommitted changes in the tree the binary was built from.
	Dirty bool `json:"dirty,omitempty"`
	// Go is the version of the Go toolchain that built the binary.
	Go string `json:"go"`
	// Platform is GOOS/GOARCH of the binary.
	Platform string `json:"platform,omitempty"`
}

// Read returns the running binary's build information. A binary built without module
// support (which go build never does today) reports "unknown" fields.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Module: "unknown", Version: "unknown", Go: "unknown"}
	}
	return FromBuildInfo(bi)
}

// FromBuildInfo extracts Info from build information, as Read does for the running binary.
func FromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitTime, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			info.Dirty = s.Value == "true"
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		info.Platform = goos + "/" + goarch
	}
	return info
}

// String is the one-line form `adjacent --version` prints, e.g.
// "adjacent v0.3.0 (commit 0123abcd4567, dirty) go1.26.8 linux/amd64".
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "adjacent %s", i.Version)
	switch {
	case i.Commit == "":
		b.WriteString(" (commit unknown)")
	case i.Dirty:
		fmt.Fprintf(&b, " (commit %s, dirty)", short(i.Commit))
	default:
		fmt.Fprintf(&b, " (commit %s)", short(i.Commit))
	}
	fmt.Fprintf(&b, " %s", i.Go)
	if i.Platform != "" {
		fmt.Fprintf(&b, " %s", i.Platform)
	}
	return b.String()
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
