package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestInterruptStopsGitAndCleansUp: SIGTERM or SIGINT to a gitfs whose git is stuck
// in the remote kills git's whole process group, removes what was being
// built and exits 130 with one line; the mirror is as it was.
func TestInterruptStopsGitAndCleansUp(t *testing.T) {
	e := newCLIEnv(t)
	repo, first := newRemote(t, 20, 14)
	base := t.TempDir()
	e.must(t, nil, base, "repo", "add", "demo", repo.Dir)
	repo.Commit(t, "main", "second", gittest.Generate(20, 15))
	tests := []struct {
		name string
		sig  syscall.Signal
		root string
		args []string
	}{
		{"add/SIGTERM", syscall.SIGTERM, filepath.Join(t.TempDir(), "root"), []string{"repo", "add", "demo", repo.Dir}},
		{"add/SIGINT", syscall.SIGINT, filepath.Join(t.TempDir(), "root"), []string{"repo", "add", "demo", repo.Dir}},
		{"fetch/SIGTERM", syscall.SIGTERM, base, []string{"repo", "fetch", "demo"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			block := filepath.Join(t.TempDir(), "never")
			p := e.start(t, []string{"UPLOAD_PACK_BLOCK=" + block}, tc.root, tc.args...)
			waitForFile(t, block+".started", p)
			p.cmd.Process.Signal(tc.sig)
			r := p.wait(t)
			if r.code != 130 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "interrupted") {
				t.Fatalf("exit %d, stderr %q; want 130 and one line saying interrupted", r.code, r.stderr)
			}
			awaitNoProcs(t, e, 2*time.Second) // the blocked upload-pack too
			requireNoTemps(t, tc.root)
			if tc.root == base {
				if got := e.must(t, nil, base, "rev-parse", "demo", "main").stdout; got != first+"\n" {
					t.Fatalf("main = %q after an interrupted fetch, want %s", got, first)
				}
			} else if _, err := os.Stat(filepath.Join(tc.root, "mirrors", "demo.git")); !os.IsNotExist(err) {
				t.Fatalf("interrupted add left a mirror: %v", err)
			}
		})
	}
}
