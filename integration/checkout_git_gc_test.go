package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCheckoutGitSurvivesGC: a `checkout --git` borrows the snapshot's
// objects through alternates, so gc keeps that snapshot until the checkout
// is gone.
func TestCheckoutGitSurvivesGC(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "c1", gittest.Generate(30, 9))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", out)
	mustGitfs(t, root, "gc")
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); err != nil {
		t.Fatalf("gc removed a snapshot a --git checkout uses: %v", err)
	}
	if b, err := exec.Command("git", "-C", out, "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Fatalf("git fsck in the checkout after gc: %v: %s", err, b)
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "gc")
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); !os.IsNotExist(err) {
		t.Fatalf("snapshot kept after its only --git checkout was removed: %v", err)
	}
}
