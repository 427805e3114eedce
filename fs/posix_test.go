//go:build linux

package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/gitfs/gitfs/internal/gittest"
)

// posixSkips are the conformance tests not run, with the reason.
var posixSkips = map[string]string{
	// Locks are left to the kernel (go-fuse's EnableLocks off), which gives
	// POSIX per-process record locks: two descriptors of one process do not
	// conflict, so this test's expected EAGAIN (per-descriptor, OFD-like
	// semantics of a daemon-side lock table) is not POSIX. Locks between
	// processes on this host work and are checked in TestLocks.
	"FcntlFlockLocksFile": "kernel-local POSIX locks: one process's descriptors do not conflict (see comment)",
}

// TestPosix runs go-fuse's conformance set twice: in a fresh directory
// made by mkdir (upper layer only), and in a directory of the commit whose
// only file was deleted first (a lower directory, copied up as it goes).
func TestPosix(t *testing.T) {
	names := make([]string, 0, len(posixtest.All))
	for n := range posixtest.All {
		names = append(names, n)
	}
	sort.Strings(names)
	files := sampleFiles()
	for _, n := range names {
		files = append(files, gittest.File{Path: "posix/" + n + "/keep.txt", Content: []byte("keep")})
	}
	e := newEnv(t, files)
	ws := e.create("posix")
	for _, layer := range []string{"upper", "lower"} {
		for i, name := range names {
			fn := posixtest.All[name]
			t.Run(layer+"/"+name, func(t *testing.T) {
				if why, ok := posixSkips[name]; ok {
					t.Skip(why)
				}
				dir := filepath.Join(ws, fmt.Sprintf("t%02d", i))
				if layer == "upper" {
					if err := os.Mkdir(dir, 0o755); err != nil {
						t.Fatal(err)
					}
				} else {
					dir = filepath.Join(ws, "posix", name)
					if err := os.Remove(filepath.Join(dir, "keep.txt")); err != nil {
						t.Fatal(err)
					}
				}
				fn(t, dir)
			})
		}
	}
}
