package fs_test

import (
	"os/exec"
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
