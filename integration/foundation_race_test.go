package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestFoundationRaceAdd: 8 processes add the same repository to an empty
// root at once: all succeed, one clone runs, one mirror results, no temp
// dir is left.
func TestFoundationRaceAdd(t *testing.T) {
	e := fndNewEnv(t)
	repo, commit := fndRemote(t, 100, 1)
	root := filepath.Join(t.TempDir(), "root")
	count := filepath.Join(t.TempDir(), "uploads")
	rs := e.runMany(t, 8, []string{"FND_COUNT=" + count, "FND_DELAY=0.2"}, root, func(int) []string {
		return []string{"repo", "add", "demo", repo.Dir}
	})
	for i, r := range rs {
		if r.code != 0 {
			t.Errorf("add %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "mirrors"))
	if len(entries) != 2 || entries[0].Name() != "demo.access.json" || entries[1].Name() != "demo.git" {
		t.Fatalf("mirrors/ = %v, want exactly demo.git and its access record", entries)
	}
	if n := fndCountFile(t, count); n != 1 {
		t.Errorf("%d clones ran, want 1", n)
	}
	fndNoTemps(t, root)
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != commit+"\n" {
		t.Fatalf("rev-parse main = %q, want %s", got, commit)
	}
	fndAwaitNoProcs(t, e, 5e9)
}

// TestFoundationRaceFetch: 8 concurrent `repo fetch` coalesce: fewer fetches
// reach the remote than there are callers, and all of them succeed.
func TestFoundationRaceFetch(t *testing.T) {
	e := fndNewEnv(t)
	repo, _ := fndRemote(t, 100, 2)
	root := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	want := repo.Commit(t, "main", "second", gittest.Generate(120, 3))
	count := filepath.Join(t.TempDir(), "uploads")
	rs := e.runMany(t, 8, []string{"FND_COUNT=" + count, "FND_DELAY=0.5"}, root, func(int) []string {
		return []string{"repo", "fetch", "demo"}
	})
	for i, r := range rs {
		if r.code != 0 {
			t.Errorf("fetch %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	n := fndCountFile(t, count)
	t.Logf("8 concurrent fetches ran %d fetch(es) against the remote", n)
	if n < 1 || n >= 8 {
		t.Fatalf("%d fetches reached the remote for 8 callers: they did not coalesce", n)
	}
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != want+"\n" {
		t.Fatalf("rev-parse main = %q, want %s", got, want)
	}
	fndNoTemps(t, root)
	fndAwaitNoProcs(t, e, 5e9)
}

// TestFoundationRaceSnapshot: 8 processes check out the same commit at once:
// exactly one snapshot is built, every checkout is right.
func TestFoundationRaceSnapshot(t *testing.T) {
	e := fndNewEnv(t)
	repo, commit := fndRemote(t, 60, 4)
	root := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	outs := t.TempDir()
	rs := e.runMany(t, 8, nil, root, func(i int) []string {
		return []string{"--log-level", "info", "checkout", "demo", "main", filepath.Join(outs, fmt.Sprint(i))}
	})
	for i, r := range rs {
		if r.code != 0 {
			t.Errorf("checkout %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if n := fndLines(rs, "snapshot created"); n != 1 {
		t.Fatalf("%d snapshots built for one commit, want 1", n)
	}
	if snaps := fndSnapshots(t, root); len(snaps) != 1 || snaps[0] != commit {
		t.Fatalf("snapshots = %v, want [%s]", snaps, commit)
	}
	want := gittest.Archive(t, repo.Dir, commit)
	for i := range rs {
		fndEqualArchive(t, want, filepath.Join(outs, fmt.Sprint(i)))
	}
	fndNoTemps(t, root, outs)
	fndAwaitNoProcs(t, e, 5e9)
}
