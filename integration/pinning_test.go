package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestSnapshotPinsForcePushedCommit: a snapshot keeps its commit readable after the
// remote force-pushed it away and the mirror collected it; it goes only
// when gc finds no lease on it, and then checkout of that commit fails
// cleanly.
func TestSnapshotPinsForcePushedCommit(t *testing.T) {
	e := newCLIEnv(t)
	repo, c := newRemote(t, 60, 8)
	want := gittest.Archive(t, repo.Dir, c)
	root := t.TempDir()
	outs := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "before"))

	d := forcePush(t, repo, 30, 9)
	if _, err := gittest.GitErr(repo.Dir, "cat-file", "-e", c); err == nil {
		t.Fatal("the remote still has C")
	}
	e.must(t, nil, root, "repo", "fetch", "demo")
	mirrorDir := filepath.Join(root, "mirrors", "demo.git")
	gittest.Git(t, mirrorDir, "reflog", "expire", "--expire=now", "--all")
	gittest.Git(t, mirrorDir, "gc", "-q", "--prune=now")
	if _, err := gittest.GitErr(mirrorDir, "cat-file", "-e", c); err == nil {
		t.Fatal("the mirror still has C after gc --prune=now")
	}
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != d+"\n" {
		t.Fatalf("main = %q, want the force-pushed %s", got, d)
	}

	// C is read from the snapshot.
	if got := e.must(t, nil, root, "rev-parse", "demo", c).stdout; got != c+"\n" {
		t.Fatalf("rev-parse C = %q", got)
	}
	e.must(t, nil, root, "checkout", "demo", c, filepath.Join(outs, "after"))
	requireTree(t, want, filepath.Join(outs, "after"))

	// A lease held by another process (this one) keeps it through gc.
	snap, release, err := snapshotStore(t, root).Get(context.Background(), "", c)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := e.must(t, nil, root, "gc").stdout; !strings.Contains(got, "removed 0 snapshot") {
		t.Fatalf("gc with a lease held: %q", got)
	}
	if _, err := snap.Lookup("f000000.txt"); err != nil {
		t.Fatalf("leased snapshot unreadable after gc: %v", err)
	}
	release()

	if got := e.must(t, nil, root, "gc").stdout; !strings.Contains(got, "removed 1 snapshot") {
		t.Fatalf("gc without a lease: %q", got)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", c)); !os.IsNotExist(err) {
		t.Fatalf("snapshot dir still there after gc: %v", err)
	}
	gone := filepath.Join(outs, "gone")
	r := e.run(t, nil, root, "checkout", "demo", c, gone)
	if r.code == 0 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "unknown revision") {
		t.Fatalf("checkout of a collected commit: exit %d, stderr %q; want one line saying unknown revision", r.code, r.stderr)
	}
	if _, err := os.Lstat(gone); !os.IsNotExist(err) {
		t.Fatalf("failed checkout created %s", gone)
	}
	requireNoTemps(t, root, outs)
}
