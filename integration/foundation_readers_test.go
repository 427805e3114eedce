package integration

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestFoundationReadersNeverWait: while a fetch is held inside the remote
// (and holds the mirror's lock), checkouts of an existing snapshot, rev
// resolution and listing all complete; a second fetch waits for the first
// and takes its result.
func TestFoundationReadersNeverWait(t *testing.T) {
	e := fndNewEnv(t)
	repo, c := fndRemote(t, 40, 10)
	want := gittest.Archive(t, repo.Dir, c)
	root := t.TempDir()
	outs := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "0"))
	next := repo.Commit(t, "main", "second", gittest.Generate(40, 11))

	release := filepath.Join(t.TempDir(), "release")
	count := filepath.Join(t.TempDir(), "uploads")
	fetch := e.start(t, []string{"FND_BLOCK=" + release, "FND_COUNT=" + count}, root, "repo", "fetch", "demo")
	t.Cleanup(func() { os.WriteFile(release, nil, 0o644) }) // never leave it blocked
	fndWaitFile(t, release+".started", fetch)
	waiter := e.start(t, []string{"FND_COUNT=" + count}, root, "repo", "fetch", "demo")

	// The fetch is blocked: every read below must finish regardless.
	e.must(t, nil, root, "checkout", "demo", c, filepath.Join(outs, "1"))
	fndEqualArchive(t, want, filepath.Join(outs, "1"))
	e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "2"))
	fndEqualArchive(t, want, filepath.Join(outs, "2"))
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
	for _, p := range []*fndProc{fetch, waiter} {
		if r := p.wait(t); r.code != 0 {
			t.Fatalf("fetch: exit %d: %s", r.code, r.stderr)
		}
	}
	if n := fndCountFile(t, count); n != 1 {
		t.Errorf("%d fetches reached the remote; the waiting one should have taken the first's result", n)
	}
	if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != next+"\n" {
		t.Fatalf("main = %q after the fetch, want %s", got, next)
	}
	fndAwaitNoProcs(t, e, 5e9)
}
