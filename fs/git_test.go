//go:build linux

package fs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestGitInWorkspace: git itself (lock files, renames, fsync, mmap of
// packs) works in a workspace.
func TestGitInWorkspace(t *testing.T) {
	e := newEnv(t, append(sampleFiles(), gittest.Generate(100, 5)...))
	ws := e.create("git")
	script := `set -e; cd ` + ws + `
export GIT_CONFIG_NOSYSTEM=1 HOME=/tmp GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q . && git add -A && git commit -qm one
echo change >> README.md && git mv src/a.go src/a2.go && git commit -qam two
git gc -q --aggressive && git fsck --no-progress && git status --porcelain | wc -l`
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("git in workspace: %v\n%s", err, out)
	}
}

// TestGitStatusReadsNoBlob: a new workspace's index holds exactly the stat
// data the mount reports, so git status is clean without reading a blob;
// a pinned pack cannot be written, even by root.
func TestGitStatusReadsNoBlob(t *testing.T) {
	e := newGitEnv(t, append(sampleFiles(), gittest.Generate(2000, 9)...))
	ws := e.create("git")
	env := "GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
	before := e.fs.Stats()
	out, err := exec.Command("sh", "-c", "cd "+ws+" && "+env+"git status --porcelain && "+env+"git rev-parse HEAD").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != e.commit {
		t.Fatalf("git status in a new workspace: %v: %q, want clean at %s", err, out, e.commit)
	}
	after := e.fs.Stats()
	if n := after.Inflations - before.Inflations; n != 0 {
		t.Errorf("git status inflated %d blobs, want none", n)
	}
	if n := after.LowerReads - before.LowerReads; n != 0 {
		t.Errorf("git status read %d times from lower files, want none", n)
	}
	packs, err := filepath.Glob(filepath.Join(ws, ".git", "objects", "pack", "pack-*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pinned packs: %v %v", packs, err)
	}
	for _, p := range packs {
		// Refused at open(2) with per-open handles, at the first write(2)
		// in no-open mode (the kernel opens by itself: raw.go).
		if err := writeOne(p); err == nil {
			t.Errorf("%s written: it is shared with the mirror", p)
		}
		if err := os.Chmod(p, 0o644); err == nil {
			t.Errorf("chmod of %s succeeded: it is shared with the mirror", p)
		}
	}
	// Status of the workspace itself never lists the git dir.
	st, err := e.fs.Status("git")
	if err != nil || len(st) != 0 {
		t.Errorf("ws status after git status: %v %v, want no changes", st, err)
	}
}
