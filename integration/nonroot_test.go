package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// The test 4: a daemon that is not root mounts through fusermount3,
// with allow_other when /etc/fuse.conf has user_allow_other, and without
// it (saying so) when it has not, as on stock Debian, where fusermount3
// refuses allow_other ("fusermount exited with code 256").

// nonRootHost is a root, mount point and remote repository that uid 65534
// owns, under a 0711 base directory outside the tests' private temp dirs
// (which only root may enter).
type nonRootHost struct {
	base, root, mnt, remote string
}

func newNonRootHost(t *testing.T) *nonRootHost {
	t.Helper()
	requireRoot(t)
	requireFUSE(t)
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("fusermount3 is missing and CI=true: .ci/run installs fuse3; install it")
		}
		t.Skip("needs fusermount3 (apt-get install fuse3)")
	}
	openDevFUSE(t)
	base, err := os.MkdirTemp("", "gitfs-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) }) // registered first: runs last
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	h := &nonRootHost{base: base, root: filepath.Join(base, "root"), mnt: filepath.Join(base, "mnt"), remote: filepath.Join(base, "remote")}
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "c1", gittest.Generate(30, 21))
	if out, err := exec.Command("cp", "-a", repo.Dir, h.remote).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	for _, dir := range []string{h.root, h.mnt} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{h.root, h.mnt, h.remote} {
		if out, err := exec.Command("chown", "-R", "65534:65534", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	if r := h.gitfs(t, "repo", "add", "demo", h.remote); r.code != 0 {
		t.Fatalf("repo add as uid 65534: %s", r.stderr)
	}
	return h
}

func (h *nonRootHost) gitfs(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, nobodyID, nobodyID, gitfsBin, append([]string{"--root", h.root}, args...)...)
}

// serve starts `gitfs serve` as uid 65534 and waits until it answers.
func (h *nonRootHost) serve(t *testing.T) *daemonProc {
	t.Helper()
	cmd := exec.Command(gitfsBin, "--root", h.root, "--log-level", "info", "serve", "--mountpoint", h.mnt)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "HOME=/nonexistent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}}
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, mnt: h.mnt, stderr: stderr, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() { d.stop(t) })
	deadline := time.Now().Add(time.Minute)
	for !isMounted(h.mnt) || h.gitfs(t, "ws", "list").code != 0 {
		select {
		case <-d.done:
			t.Fatalf("serve as uid 65534 exited: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve as uid 65534 did not come up: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// openDevFUSE makes /dev/fuse 0666 until the test ends, as udev and the
// fuse3 package make it on a host: fusermount3 opens it as the user. A
// minimal container may have it 0600.
func openDevFUSE(t *testing.T) {
	t.Helper()
	fi, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() == 0o666 {
		return
	}
	if err := os.Chmod("/dev/fuse", 0o666); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod("/dev/fuse", fi.Mode().Perm()) })
}

// withFuseConf makes /etc/fuse.conf say conf until the test ends, then
// puts back what was there (or nothing).
func withFuseConf(t *testing.T, conf string) {
	t.Helper()
	const path = "/etc/fuse.conf"
	old, err := os.ReadFile(path)
	existed := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if existed {
			os.WriteFile(path, old, 0o644)
		} else {
			os.Remove(path)
		}
	})
}

func mountOptions(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == dir {
			return f[3]
		}
	}
	t.Fatalf("%s is not mounted", dir)
	return ""
}

func TestNonRootDaemon(t *testing.T) {
	t.Run("without user_allow_other", func(t *testing.T) {
		h := newNonRootHost(t)
		withFuseConf(t, "# stock Debian\n#user_allow_other\n")
		d := h.serve(t)
		if !strings.Contains(d.stderr.String(), "without allow_other") {
			t.Errorf("the daemon does not say it mounted without allow_other:\n%s", d.stderr.String())
		}
		if opts := mountOptions(t, h.mnt); strings.Contains(opts, "allow_other") {
			t.Errorf("mounted with %s", opts)
		}
		h.useAsOwner(t)
		// Without allow_other the kernel keeps everyone else out, root too.
		if _, err := os.Stat(filepath.Join(h.mnt, "w")); !errors.Is(err, os.ErrPermission) {
			t.Errorf("root stat of an owner-only mount: %v, want EACCES", err)
		}
	})
	t.Run("with user_allow_other", func(t *testing.T) {
		h := newNonRootHost(t)
		withFuseConf(t, "user_allow_other\n")
		d := h.serve(t)
		if strings.Contains(d.stderr.String(), "without allow_other") {
			t.Errorf("the daemon fell back although user_allow_other is set:\n%s", d.stderr.String())
		}
		if opts := mountOptions(t, h.mnt); !strings.Contains(opts, "allow_other") {
			t.Errorf("mounted with %s, want allow_other", opts)
		}
		h.useAsOwner(t)
		if _, err := os.ReadFile(filepath.Join(h.mnt, "w", "new.txt")); err != nil {
			t.Errorf("root read through an allow_other mount: %v", err)
		}
	})
}

// useAsOwner creates a workspace as the daemon's user, reads and writes in
// it and checks its status.
func (h *nonRootHost) useAsOwner(t *testing.T) {
	t.Helper()
	r := h.gitfs(t, "ws", "create", "w", "--repo", "demo", "--rev", "main")
	if r.code != 0 {
		t.Fatalf("ws create as uid 65534: %s", r.stderr)
	}
	ws := strings.TrimSpace(r.stdout)
	if s := shAs(t, nobodyID, "find "+ws+" -type f -exec cat {} + >/dev/null && echo hi > "+ws+"/new.txt && cat "+ws+"/new.txt"); s.code != 0 || s.stdout != "hi\n" {
		t.Fatalf("read and write as uid 65534: exit %d, %q, %s", s.code, s.stdout, s.stderr)
	}
	if st := h.gitfs(t, "ws", "status", "w"); st.code != 0 || !strings.Contains(st.stdout, "A  new.txt") {
		t.Fatalf("ws status: exit %d: %s%s", st.code, st.stdout, st.stderr)
	}
}
