package fs_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
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

// TestPosix runs go-fuse's conformance set, each test in a fresh directory
// of a workspace (made by mkdir, so in the upper layer), and again in a
// directory of the lower layer (a copied-up tree).
func TestPosix(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("posix")
	names := make([]string, 0, len(posixtest.All))
	for n := range posixtest.All {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, name := range names {
		fn := posixtest.All[name]
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			dir := filepath.Join(ws, fmt.Sprintf("t%02d", i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			fn(t, dir)
		})
	}
}
