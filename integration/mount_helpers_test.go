package integration

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// requireFUSE skips when FUSE cannot be used here, except under CI=true,
// where a skipped mount test would hide a broken product: it fails instead.
func requireFUSE(t testing.TB) {
	t.Helper()
	reason := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		reason = "/dev/fuse is missing"
	} else if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			reason = "not root and no fusermount3 on PATH"
		}
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE is unusable (%s) and CI=true: mount tests may not skip", reason)
	}
	t.Skipf("FUSE is unusable: %s", reason)
}

// isMounted reports whether dir is a mount point in /proc/mounts.
func isMounted(dir string) bool {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && fields[1] == dir {
			return true
		}
	}
	return false
}

// daemonProc is a `gitfs serve` started by a test.
type daemonProc struct {
	cmd    *exec.Cmd
	mnt    string
	stderr *syncBuffer
	done   chan struct{}
}

// syncBuffer collects a daemon's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex // guards b: the exec copier writes while tests read
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts `gitfs serve` on root at a fresh mount point (or mnt, when
// given) and waits until it answers on its socket. The mount is always
// torn down at cleanup, even after kill -9.
func serve(t testing.TB, root, mnt string, extra ...string) *daemonProc {
	t.Helper()
	requireFUSE(t)
	if mnt == "" {
		mnt = filepath.Join(t.TempDir(), "mnt")
	}
	args := append([]string{"--root", root, "--log-level", "info", "serve", "--mountpoint", mnt}, extra...)
	cmd := exec.Command(gitfsBin, args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	cmd.Stdout = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start serve: %v", err)
	}
	d := &daemonProc{cmd: cmd, mnt: mnt, stderr: stderr, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-d.done:
			t.Fatalf("gitfs serve exited early: %s", stderr.String())
		default:
		}
		if isMounted(mnt) && gitfs(t, root, "ws", "list").code == 0 {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitfs serve did not come up: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; whatever happens, the mount is gone after.
func (d *daemonProc) stop(t testing.TB) {
	select {
	case <-d.done:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			t.Errorf("gitfs serve ignored SIGTERM for 30s; killing it")
			d.cmd.Process.Kill()
			<-d.done
		}
	}
	forceUnmount(d.mnt)
}

// kill9 kills the daemon as a crash would and detaches its dead mount.
func (d *daemonProc) kill9() {
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	forceUnmount(d.mnt)
}

func forceUnmount(mnt string) {
	for i := 0; i < 50 && isMounted(mnt); i++ {
		detachMount(mnt)
		time.Sleep(10 * time.Millisecond)
	}
}

// wsCreate creates a workspace and returns its path.
func wsCreate(t testing.TB, root, name string, args ...string) string {
	t.Helper()
	out := mustGitfs(t, root, append([]string{"ws", "create", name}, args...)...)
	return strings.TrimSpace(out)
}

func withTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
