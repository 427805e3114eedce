package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestConcurrentAddsCloneOnce: 8 processes add the same repository to an empty
// root at once: all succeed, one clone runs, one mirror results, no temp
// dir is left.
func TestConcurrentAddsCloneOnce(t *testing.T) {
	e := newCLIEnv(t)
	repo, commit := newRemote(t, 100, 1)
	root := filepath.Join(t.TempDir(), "root")
	count := filepath.Join(t.TempDir(), "uploads")
	rs := e.runMany(t, 8, []string{"UPLOAD_PACK_COUNT=" + count, "UPLOAD_PACK_DELAY=0.2"}, root, func(int) []string {
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
	if n := uploadPackRuns(t, count); n != 1 {
		t.Errorf("%d clones ran, want 1", n)
	}
	requireNoTemps(t, root)
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != commit+"\n" {
		t.Fatalf("rev-parse main = %q, want %s", got, commit)
	}
	awaitNoProcs(t, e, 5e9)
}

// TestConcurrentFetchesCoalesce: 8 concurrent `repo fetch` coalesce: fewer fetches
// reach the remote than there are callers, and all of them succeed.
func TestConcurrentFetchesCoalesce(t *testing.T) {
	e := newCLIEnv(t)
	repo, _ := newRemote(t, 100, 2)
	root := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	want := repo.Commit(t, "main", "second", gittest.Generate(120, 3))
	count := filepath.Join(t.TempDir(), "uploads")
	rs := e.runMany(t, 8, []string{"UPLOAD_PACK_COUNT=" + count, "UPLOAD_PACK_DELAY=0.5"}, root, func(int) []string {
		return []string{"repo", "fetch", "demo"}
	})
	for i, r := range rs {
		if r.code != 0 {
			t.Errorf("fetch %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	n := uploadPackRuns(t, count)
	t.Logf("8 concurrent fetches ran %d fetch(es) against the remote", n)
	if n < 1 || n >= 8 {
		t.Fatalf("%d fetches reached the remote for 8 callers: they did not coalesce", n)
	}
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != want+"\n" {
		t.Fatalf("rev-parse main = %q, want %s", got, want)
	}
	requireNoTemps(t, root)
	awaitNoProcs(t, e, 5e9)
}

// TestConcurrentCheckoutsBuildOneSnapshot: 8 processes check out the same commit at once:
// exactly one snapshot is built, every checkout is right.
func TestConcurrentCheckoutsBuildOneSnapshot(t *testing.T) {
	e := newCLIEnv(t)
	repo, commit := newRemote(t, 60, 4)
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
	if n := countLines(rs, "snapshot created"); n != 1 {
		t.Fatalf("%d snapshots built for one commit, want 1", n)
	}
	if snaps := publishedSnapshots(t, root); len(snaps) != 1 || snaps[0] != commit {
		t.Fatalf("snapshots = %v, want [%s]", snaps, commit)
	}
	want := gittest.Archive(t, repo.Dir, commit)
	for i := range rs {
		requireTree(t, want, filepath.Join(outs, fmt.Sprint(i)))
	}
	requireNoTemps(t, root, outs)
	awaitNoProcs(t, e, 5e9)
}

// TestReadersNeverWaitForFetch: while a fetch is held inside the remote
// (and holds the mirror's lock), checkouts of an existing snapshot, rev
// resolution and listing all complete; a second fetch waits for the first
// and takes its result.
func TestReadersNeverWaitForFetch(t *testing.T) {
	e := newCLIEnv(t)
	repo, c := newRemote(t, 40, 10)
	want := gittest.Archive(t, repo.Dir, c)
	root := t.TempDir()
	outs := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "0"))
	next := repo.Commit(t, "main", "second", gittest.Generate(40, 11))

	release := filepath.Join(t.TempDir(), "release")
	count := filepath.Join(t.TempDir(), "uploads")
	fetch := e.start(t, []string{"UPLOAD_PACK_BLOCK=" + release, "UPLOAD_PACK_COUNT=" + count}, root, "repo", "fetch", "demo")
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) }) // never leave it blocked
	waitForFile(t, release+".started", fetch)
	waiter := e.start(t, []string{"UPLOAD_PACK_COUNT=" + count}, root, "repo", "fetch", "demo")

	// The fetch is blocked: every read below must finish regardless.
	e.must(t, nil, root, "checkout", "demo", c, filepath.Join(outs, "1"))
	requireTree(t, want, filepath.Join(outs, "1"))
	e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "2"))
	requireTree(t, want, filepath.Join(outs, "2"))
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != c+"\n" {
		t.Fatalf("rev-parse main during the fetch = %q, want %s", got, c)
	}
	e.must(t, nil, root, "repo", "list")
	if !fetch.running() || !waiter.running() {
		t.Fatalf("a fetch finished before it was released: %+v %+v", fetch.res, waiter.res)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*cliProc{fetch, waiter} {
		if r := p.wait(t); r.code != 0 {
			t.Fatalf("fetch: exit %d: %s", r.code, r.stderr)
		}
	}
	if n := uploadPackRuns(t, count); n != 1 {
		t.Errorf("%d fetches reached the remote; the waiting one should have taken the first's result", n)
	}
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != next+"\n" {
		t.Fatalf("main = %q after the fetch, want %s", got, next)
	}
	awaitNoProcs(t, e, 5e9)
}
