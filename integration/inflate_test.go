package integration

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestServeFillsStore: the daemon fills the blob store with every blob of
// each workspace's commit in the background (serve --inflate is now
// implied); the workspace reads as from the packs, and a file opened
// before `ws update` keeps reading its old bytes.
func TestServeFillsStore(t *testing.T) {
	files := gittest.Generate(300, 21)
	files = append(files, gittest.File{Path: "changing.txt", Content: []byte(strings.Repeat("old bytes\n", 500))})
	repo := gittest.NewRepo(t)
	c1 := repo.Commit(t, "main", "c1", files)
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	d := serve(t, root, "")
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	n1 := distinctBlobs(t, repo.Dir, c1)
	waitFor(t, 60*time.Second, "the background fill of the first commit", func() bool {
		return storedBlobs(t, root) >= n1
	})
	if !strings.Contains(d.stderr.String(), "blob store: snapshot filled") {
		t.Errorf("no log line for the background fill:\n%s", d.stderr.String())
	}
	if diff := gittest.Diff(gittest.Archive(t, repo.Dir, c1), gittest.ReadDir(t, ws, ".git"), 5); len(diff) > 0 {
		t.Fatalf("workspace differs from git archive after the fill: %v", diff)
	}

	// Open, but do not read yet, the file the next commit changes.
	f, err := os.Open(filepath.Join(ws, "changing.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c2 := repo.Commit(t, "main", "c2", withFile(files, "changing.txt", "new bytes\n"))
	mustGitfs(t, root, "ws", "update", "w", "--fetch")
	old, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading a handle opened before the update: %v", err)
	}
	if string(old) != strings.Repeat("old bytes\n", 500) {
		t.Errorf("a handle opened before the update reads %.40q, want the old bytes", old)
	}
	waitFor(t, 60*time.Second, "the background fill of the updated commit", func() bool {
		return storedBlobs(t, root) >= n1+1 // its one new blob
	})
	if diff := gittest.Diff(gittest.Archive(t, repo.Dir, c2), gittest.ReadDir(t, ws, ".git"), 5); len(diff) > 0 {
		t.Fatalf("workspace differs from git archive after update: %v", diff)
	}
}
