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

// TestGCContents: `gc --contents` removes the inflated contents file of a
// snapshot it keeps, and the next checkout of the commit makes it again.
func TestGCContents(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "c1", gittest.Generate(40, 5))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	keep := filepath.Join(t.TempDir(), "keep")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", keep) // holds the snapshot
	contents := filepath.Join(root, "snapshots", commit, "contents")
	if _, err := os.Stat(contents); err != nil {
		t.Fatalf("first checkout made no contents file: %v", err)
	}
	mustGitfs(t, root, "gc")
	if _, err := os.Stat(contents); err != nil {
		t.Fatalf("plain gc removed the contents file of a kept snapshot: %v", err)
	}
	mustGitfs(t, root, "gc", "--contents")
	if _, err := os.Stat(contents); !os.IsNotExist(err) {
		t.Fatalf("gc --contents kept the contents file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit, "meta.json")); err != nil {
		t.Fatalf("gc --contents removed a held snapshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "demo", "main", out)
	if d := gittest.Diff(gittest.Archive(t, repo.Dir, commit), gittest.ReadDir(t, out), 5); len(d) > 0 {
		t.Fatalf("checkout after gc --contents: %v", d)
	}
	if _, err := os.Stat(contents); err != nil {
		t.Fatalf("checkout after gc --contents made no contents file: %v", err)
	}
}
