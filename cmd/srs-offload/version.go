package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time, as `make build` does:
// go build -ldflags "-X main.version=v1.2.3 -X main.commit=0123abc…".
var (
	version = "dev"
	commit  = ""
)

// buildCommit is commit, or else the revision go build stamped into the binary (with "-dirty"
// when the tree had changes), or "unknown" (e.g. built outside a git checkout).
func buildCommit() string {
	if commit != "" {
		return commit
	}
	rev, dirty := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// versionLine is what `srs-offload version` prints.
func versionLine() string {
	return fmt.Sprintf("srs-offload %s (commit %s, %s)", version, buildCommit(), runtime.Version())
}
