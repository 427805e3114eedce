package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestWsExport: `ws export` writes the workspace as it is, commit plus
// changes, to a real directory.
func TestWsExport(t *testing.T) {
	_, root, _ := mountFixture(t, 200)
	serve(t, root, "")
	ws := wsCreate(t, root, "job1", "--repo", "demo", "--rev", "main")
	p := func(s string) string { return filepath.Join(ws, s) }
	if err := os.WriteFile(p("new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("f000002.txt"), []byte("modified"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p("f000002.txt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p("f000004.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("d01"), p("moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("new.txt", p("newlink")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	mustGitfs(t, root, "ws", "export", "job1", out)
	want := gittest.ReadDir(t, ws, ".git") // the export is a tree, not a clone
	got := gittest.ReadDir(t, out)
	if d := gittest.Diff(want, got, 10); len(d) > 0 {
		t.Fatalf("export differs from the workspace:\n%s", strings.Join(d, "\n"))
	}
	if r := gitfs(t, root, "ws", "export", "job1", out); r.code == 0 {
		t.Error("export into a non-empty directory succeeded")
	}
}
