package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestBackgroundFetch: `serve --fetch-interval` fetches new commits, builds
// the new merge snapshot of a --merge-into workspace ahead of time, never
// switches the workspace by itself, and survives a failing remote (logged,
// backed off, nothing removed).
func TestBackgroundFetch(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "base", mergeBase)
	gittest.Git(t, repo.Dir, "branch", "feature", "main")
	repo.Commit(t, "feature", "f1", withFile(mergeBase, "feature.txt", "f1\n"))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	d := serve(t, root, "", "--fetch-interval", "300ms")
	ws := wsCreate(t, root, "pr", "--repo", "demo", "--rev", "feature", "--merge-into", "main")
	before := mustGitfs(t, root, "ws", "list")

	newMain := repo.Commit(t, "main", "main moves", withFile(mergeBase, "main.txt", "m\n"))
	waitFor(t, 60*time.Second, "the background fetch to see the new main", func() bool {
		r := gitfs(t, root, "rev-parse", "demo", "main")
		return strings.TrimSpace(r.stdout) == newMain
	})
	waitFor(t, 60*time.Second, "the new merge to be precomputed", func() bool {
		return strings.Contains(d.stderr.String(), "merge precomputed")
	})
	if after := mustGitfs(t, root, "ws", "list"); after != before {
		t.Errorf("the daemon switched a workspace by itself:\n%s\n->\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(ws, "main.txt")); !os.IsNotExist(err) {
		t.Errorf("main.txt visible before ws update: %v", err)
	}
	mustGitfs(t, root, "ws", "update", "pr")
	if _, err := os.Stat(filepath.Join(ws, "main.txt")); err != nil {
		t.Errorf("main.txt missing after ws update: %v", err)
	}

	// A remote that went away: failures are logged and nothing is removed.
	if err := os.Rename(repo.Dir, repo.Dir+".gone"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a logged fetch failure", func() bool {
		return strings.Contains(d.stderr.String(), "background fetch failed")
	})
	if r := gitfs(t, root, "rev-parse", "demo", "main"); strings.TrimSpace(r.stdout) != newMain {
		t.Errorf("after failed fetches main resolves to %q, %s; want %s", r.stdout, r.stderr, newMain)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "feature.txt")); err != nil || string(b) != "f1\n" {
		t.Errorf("workspace unreadable after failed fetches: %q, %v", b, err)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
