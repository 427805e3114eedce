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

// TestServeInflate: with --inflate the daemon inflates each workspace's
// snapshot into its contents file in the background; the workspace reads
// from it as from the packs, and a file opened before `ws update` keeps
// reading its old bytes from the old commit's contents file.
func TestServeInflate(t *testing.T) {
	files := gittest.Generate(300, 21)
	files = append(files, gittest.File{Path: "changing.txt", Content: []byte(strings.Repeat("old bytes\n", 500))})
	repo := gittest.NewRepo(t)
	c1 := repo.Commit(t, "main", "c1", files)
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	d := serve(t, root, "", "--inflate")
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	contents := func(commit string) string { return filepath.Join(root, "snapshots", commit, "contents") }
	waitFor(t, 60*time.Second, "the background inflation of the first commit", func() bool {
		_, err := os.Stat(contents(c1))
		return err == nil
	})
	if !strings.Contains(d.stderr.String(), "snapshot inflated in the background") {
		t.Errorf("no log line for the background inflation:\n%s", d.stderr.String())
	}
	// The file system looks for a new contents file every 10 s.
	time.Sleep(11 * time.Second)
	if diff := gittest.Diff(gittest.Archive(t, repo.Dir, c1), gittest.ReadDir(t, ws, ".git"), 5); len(diff) > 0 {
		t.Fatalf("workspace differs from git archive after inflation: %v", diff)
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
	waitFor(t, 60*time.Second, "the background inflation of the updated commit", func() bool {
		_, err := os.Stat(contents(c2))
		return err == nil
	})
	if diff := gittest.Diff(gittest.Archive(t, repo.Dir, c2), gittest.ReadDir(t, ws, ".git"), 5); len(diff) > 0 {
		t.Fatalf("workspace differs from git archive after update: %v", diff)
	}
}
