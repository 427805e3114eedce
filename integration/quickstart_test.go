package integration

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestQuickstart runs the README's first command as a newcomer would (on a
// generated repository instead of this one): it mounts a workspace at HEAD,
// prints what to try, and unmounts cleanly on Ctrl-C.
func TestQuickstart(t *testing.T) {
	requireFUSE(t)
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "c1", gittest.Generate(50, 5))
	root := t.TempDir()
	mnt := filepath.Join(t.TempDir(), "mnt")
	cmd := exec.Command(gitfsBin, "--root", root, "quickstart", "--mountpoint", mnt)
	cmd.Dir = repo.Dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		forceUnmount(mnt)
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var out strings.Builder
	deadline := time.After(60 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("quickstart ended early: %s %s", out.String(), stderr.String())
			}
			out.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("quickstart printed no instructions: %s %s", out.String(), stderr.String())
		}
	}
	ws := filepath.Join(mnt, "quickstart")
	if !strings.Contains(out.String(), ws) || !strings.Contains(out.String(), "ws status quickstart") {
		t.Errorf("instructions do not show the workspace and ws status:\n%s", out.String())
	}
	want := gittest.Archive(t, repo.Dir, "HEAD")
	if d := gittest.Diff(want, gittest.ReadDir(t, ws, ".git"), 10); len(d) > 0 {
		t.Errorf("quickstart workspace differs from HEAD: %v", d)
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("quickstart after Ctrl-C: %v: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("quickstart did not stop on Ctrl-C")
	}
	if isMounted(mnt) {
		t.Error("mount left behind after Ctrl-C")
	}
}
