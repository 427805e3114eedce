package mirror

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gitfs/gitfs/locks"
)

// TestCleanStaleTemps: gc-time cleanup removes a dead builder's
// clone temp dir, keeps a live one's and the mirrors and broken copies.
func TestCleanStaleTemps(t *testing.T) {
	f := newFixture(t)
	dead := exec.Command("true")
	must(t, dead.Run())
	mirrors := filepath.Join(f.root, "mirrors")
	deadTmp := filepath.Join(mirrors, "x.git"+locks.TempMarker+strconv.Itoa(dead.Process.Pid)+"-aa")
	liveTmp := filepath.Join(mirrors, "y.git"+locks.TempMarker+strconv.Itoa(os.Getpid())+"-bb")
	broken := filepath.Join(mirrors, "demo.broken-20260101T000000.000000000")
	for _, d := range []string{deadTmp, liveTmp, broken} {
		must(t, os.MkdirAll(filepath.Join(d, "objects"), 0o755))
	}
	f.set.CleanStale()
	for path, want := range map[string]bool{deadTmp: false, liveTmp: true, broken: true, f.dir(): true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s kept=%v, want %v", filepath.Base(path), err == nil, want)
		}
	}
}
