// Package version says which gitfs this is: the release stamped at build
// time, else what the Go toolchain recorded (module version, VCS commit).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is stamped by release builds:
//
//	go build -ldflags "-X github.com/gitfs/gitfs/internal/version.Version=v1.2.3" ./cmd/gitfs
var Version = ""

// Short is the version alone: the stamped one, else the module version,
// else "devel" plus the VCS commit when the build recorded it.
func Short() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// Long is what `gitfs --version` prints.
func Long() string {
	return fmt.Sprintf("gitfs %s (%s, %s/%s)", Short(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
