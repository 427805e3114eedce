//go:build linux

package fs_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

func TestWorkspaceAndBrowseEqualGitArchive(t *testing.T) {
	files := append(sampleFiles(), gittest.Generate(300, 1)...)
	e := newEnv(t, files)
	gittest.Git(t, e.repo.Dir, "tag", "v1")
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	want := gittest.Archive(t, e.repo.Dir, e.commit)
	ws := e.create("job1")
	for _, dir := range []string{
		ws,
		filepath.Join(e.mnt, "@demo", "heads", "main"),
		filepath.Join(e.mnt, "@demo", "tags", "v1"),
		filepath.Join(e.mnt, "@demo", "HEAD"),
		filepath.Join(e.mnt, "@demo", "commits", e.commit),
	} {
		got := gittest.ReadDir(t, dir)
		if d := gittest.Diff(want, got, 10); len(d) > 0 {
			t.Errorf("%s differs from git archive: %v", dir, d)
		}
	}
	// Shell tools agree: find sees every path, ls -a shows . and ..
	out, err := exec.Command("sh", "-c", "cd "+ws+" && find . | wc -l && ls -a | head -2").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, wantLines := strings.Fields(string(out)), []string{strconv.Itoa(len(want) + 1), ".", ".."}; strings.Join(got, " ") != strings.Join(wantLines, " ") {
		t.Errorf("find | wc -l; ls -a: %q, want %q", got, wantLines)
	}
	// Unchanged files report the commit time, every time.
	st1, err := os.Stat(filepath.Join(ws, "src/a.go"))
	if err != nil {
		t.Fatal(err)
	}
	if got := st1.ModTime().Unix(); got != 1704164645 {
		t.Errorf("mtime %d, want the commit time 1704164645", got)
	}
	// Browse paths are read-only.
	for _, p := range []string{"new", "README.md"} {
		err := os.WriteFile(filepath.Join(e.mnt, "@demo/heads/main", p), []byte("x"), 0o644)
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("write to browse path %s: %v, want EROFS", p, err)
		}
	}
	if err := os.Remove(filepath.Join(e.mnt, "@demo/heads/main/README.md")); !errors.Is(err, syscall.EROFS) {
		t.Errorf("unlink in browse path: %v, want EROFS", err)
	}
	if err := os.Mkdir(filepath.Join(e.mnt, "@demo/heads/main/d"), 0o755); !errors.Is(err, syscall.EROFS) {
		t.Errorf("mkdir in browse path: %v, want EROFS", err)
	}
	if _, err := os.Stat(filepath.Join(e.mnt, "@demo/heads/nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown branch: %v", err)
	}
	names, err := os.ReadDir(e.mnt)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 || names[0].Name() != "@demo" || names[1].Name() != "job1" {
		t.Errorf("mount root lists %v", names)
	}
}
