//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
)

// Progress is shown on a terminal, and only there: not when stderr is a
// file or a pipe, and not with --quiet.

// onTerminal runs gitfs with stderr on a new pseudo-terminal and returns
// what it wrote there and its stdout.
func onTerminal(t *testing.T, root string, args ...string) (term, stdout string) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	pts, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&out, ptm) // ends with EIO once the last slave descriptor is closed
		close(read)
	}()
	cmd := exec.Command(gitfsBin, append([]string{"--root", root}, args...)...)
	var so bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, pts
	err = cmd.Run()
	pts.Close()
	select {
	case <-read:
	case <-time.After(30 * time.Second):
		t.Fatal("reading the pty did not end")
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("gitfs %s on a terminal: %v: %s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), so.String()
}

func TestProgressOnlyOnATerminal(t *testing.T) {
	repo, _ := newRemote(t, 30, 41)

	t.Run("repo add", func(t *testing.T) {
		term, stdout := onTerminal(t, filepath.Join(t.TempDir(), "root"), "repo", "add", "demo", repo.Dir)
		if !strings.Contains(term, "Cloning into bare repository") || stdout != "" {
			t.Errorf("on a terminal: %q, stdout %q; want git's progress", term, stdout)
		}
		if term, _ := onTerminal(t, filepath.Join(t.TempDir(), "root"), "--quiet", "repo", "add", "demo", repo.Dir); term != "" {
			t.Errorf("with --quiet: %q, want nothing", term)
		}
		if r := gitfs(t, filepath.Join(t.TempDir(), "root"), "repo", "add", "demo", repo.Dir); r.code != 0 || r.stderr != "" {
			t.Errorf("not on a terminal: exit %d, stderr %q; want nothing", r.code, r.stderr)
		}
	})

	t.Run("repo fetch", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
		repo.Commit(t, "main", "next", gittest.Generate(31, 41))
		if term, _ := onTerminal(t, root, "repo", "fetch", "demo"); !strings.Contains(term, "main") {
			t.Errorf("fetch on a terminal: %q, want git's ref updates", term)
		}
		repo.Commit(t, "main", "again", gittest.Generate(32, 41))
		if r := gitfs(t, root, "repo", "fetch", "demo"); r.code != 0 || r.stderr != "" {
			t.Errorf("not on a terminal: exit %d, stderr %q; want nothing", r.code, r.stderr)
		}
	})

	t.Run("ws export", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
		serve(t, root, "")
		wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
		term, _ := onTerminal(t, root, "ws", "export", "w", filepath.Join(t.TempDir(), "a"))
		if !strings.Contains(term, "gitfs ws export: ") || !strings.Contains(term, "files") || !strings.Contains(term, "done") {
			t.Errorf("export on a terminal: %q, want its count", term)
		}
		if r := gitfs(t, root, "ws", "export", "w", filepath.Join(t.TempDir(), "b")); r.code != 0 || r.stderr != "" {
			t.Errorf("not on a terminal: exit %d, stderr %q; want nothing", r.code, r.stderr)
		}
	})

	t.Run("gc", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
		if term, _ := onTerminal(t, root, "gc"); !strings.Contains(term, "git gc of 1 mirror(s), done") {
			t.Errorf("gc on a terminal: %q", term)
		}
	})
}
