//go:build linux

package fs_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	gitfs "github.com/gitfs/gitfs/fs"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

func TestMain(m *testing.M) {
	if os.Getenv("GITFS_FS_HELPER") == "serve" {
		serveHelper()
		return
	}
	os.Exit(m.Run())
}

// serveHelper is a daemon in a child process: it mounts ROOT on MNT,
// creates workspace NAME at COMMIT if asked, says "ready" and serves until
// killed.
func serveHelper() {
	root, mnt := os.Getenv("GITFS_ROOT"), os.Getenv("GITFS_MNT")
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	log := testLog(nil)
	ms, err := mirror.Open(root, log)
	if err != nil {
		fail(err)
	}
	st, err := snapshot.NewStore(root, ms, log, snapshot.Options{MemBlobMax: 64 << 10})
	if err != nil {
		fail(err)
	}
	f, err := gitfs.New(gitfs.Options{Root: root, Snapshots: st, Resolver: resolver{ms}, Log: log, Passthrough: true})
	if err != nil {
		fail(err)
	}
	if err := f.Mount(mnt); err != nil {
		fail(err)
	}
	if name := os.Getenv("GITFS_WS"); name != "" {
		if _, err := f.Create(context.Background(), name, workspace.Spec{Repo: "demo", Rev: "main", Commit: os.Getenv("GITFS_COMMIT")}); err != nil {
			fail(err)
		}
	}
	fmt.Println("ready")
	f.Wait()
}

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestRestartAfterKill writes, renames and deletes in a workspace served by
// a child daemon, kills it with SIGKILL, and loads the root again.
func TestRestartAfterKill(t *testing.T) {
	e := newEnv(t, sampleFiles())
	// The child serves its own mount of the same root.
	mnt := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GITFS_FS_HELPER=serve", "GITFS_ROOT="+e.root, "GITFS_MNT="+mnt,
		"GITFS_WS=crash", "GITFS_COMMIT="+e.commit)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if mounted(mnt) {
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child daemon: %q %v", line, err)
	}
	ws := filepath.Join(mnt, "crash")
	inos := map[string]uint64{}
	for _, p := range []string{"src/b.go", "src/deep/x/y/z.txt", "data", "README.md", "src/a.go"} {
		inos[p] = inode(t, filepath.Join(ws, p))
	}
	if err := os.WriteFile(filepath.Join(ws, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "new.txt"), []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inos["new.txt"] = inode(t, filepath.Join(ws, "new.txt"))
	if err := os.Rename(filepath.Join(ws, "src/a.go"), filepath.Join(ws, "data/a.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(ws, "src/deep"), filepath.Join(ws, "deep2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws, "empty")); err != nil {
		t.Fatal(err)
	}
	// An open descriptor with unflushed-by-close data when the daemon dies.
	f, err := os.OpenFile(filepath.Join(ws, "open.txt"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("written before the kill\n"); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	killed = true
	f.Close()
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		t.Fatalf("detach dead mount: %v", err)
	}
	// Restart: New over the same root (the env's FS was mounted before the
	// workspace existed; mount a second one, as a restarted daemon would).
	e.mount()
	ws = filepath.Join(e.mnt, "crash")
	for p, want := range map[string]string{
		"README.md":       "changed\n",
		"new.txt":         "new\n",
		"data/a.go":       "package a\n",
		"deep2/x/y/z.txt": "zzz\n",
		"open.txt":        "written before the kill\n",
		"src/b.go":        "package b\n",
		"deep2/other.txt": "other\n",
	} {
		if got := readFile(t, filepath.Join(ws, p)); got != want {
			t.Errorf("%s after restart: %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"src/a.go", "empty", "src/deep"} {
		if _, err := os.Lstat(filepath.Join(ws, p)); !os.IsNotExist(err) {
			t.Errorf("%s after restart: %v, want it gone", p, err)
		}
	}
	for p, want := range map[string]uint64{
		"src/b.go": inos["src/b.go"], "deep2/x/y/z.txt": inos["src/deep/x/y/z.txt"], "data": inos["data"],
		"README.md": inos["README.md"], "new.txt": inos["new.txt"], "data/a.go": inos["src/a.go"],
	} {
		if got := inode(t, filepath.Join(ws, p)); got != want {
			t.Errorf("inode of %s after restart: %d, want %d", p, got, want)
		}
	}
	if st, err := os.Stat(filepath.Join(ws, "src/b.go")); err != nil || st.ModTime().Unix() != 1704164645 {
		t.Errorf("mtime of unchanged file after restart: %v %v", st, err)
	}
	_ = time.Second
}
