//go:build linux

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// A daemon killed while it pushes a page into the page cache that a
// reader's READ holds locked cannot die: its last thread waits in the
// kernel for the page, the READ waits for the daemon. The next serve must
// see that, abort the stuck connection and take over. Real gitfs hits the
// race rarely (it needs the kill to land between a READ and a push of the
// same page); wedgeHelper makes it certain: it stands in for a daemon of
// the root (its lock, its record, a fuse.gitfs mount), never answers the
// first READ and pushes that READ's page.

// wedgeHelperEnv names the root, and the mount point after a newline, when the test binary runs as
// the helper (TestMain).
const wedgeHelperEnv = "GITFS_TEST_WEDGE_HELPER"

type wedgeFile struct {
	fs.Inode
	readArrived chan struct{}
}

func (f *wedgeFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	out.Size = 1 << 20
	return 0
}

func (f *wedgeFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, 0
}

func (f *wedgeFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	select {
	case f.readArrived <- struct{}{}:
	default:
	}
	<-ctx.Done() // only an abort or the kill ends it
	return nil, syscall.EINTR
}

type wedgeRoot struct {
	fs.Inode
	file *wedgeFile
}

func (r *wedgeRoot) OnAdd(ctx context.Context) {
	r.AddChild("f", r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2}), true)
}

// runWedgeHelper is the helper process: it prints "mounted" once it holds
// the lock and serves, and "storing" once its push waits for the page.
func runWedgeHelper(arg string) int {
	root, mnt, _ := strings.Cut(arg, "\n")
	lock, err := os.OpenFile(filepath.Join(root, "locks", "daemon.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wedge helper: lock:", err)
		return 1
	}
	wedgeLock = lock
	file := &wedgeFile{readArrived: make(chan struct{}, 1)}
	if _, err := fs.Mount(mnt, &wedgeRoot{file: file}, &fs.Options{MountOptions: fuse.MountOptions{DirectMount: os.Geteuid() == 0, Name: "gitfs", FsName: "wedge"}}); err != nil {
		fmt.Fprintln(os.Stderr, "wedge helper: mount:", err)
		return 1
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		fmt.Fprintln(os.Stderr, "wedge helper:", err)
		return 1
	}
	rec, _ := json.Marshal(map[string]any{"pid": os.Getpid(), "mountpoint": mnt, "dev": st.Dev})
	if err := os.WriteFile(filepath.Join(root, "locks", "daemon.mount"), rec, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "wedge helper:", err)
		return 1
	}
	fmt.Println("mounted")
	<-file.readArrived
	go file.WriteCache(0, make([]byte, 4096)) // waits for the READ's locked page
	time.Sleep(300 * time.Millisecond)
	fmt.Println("storing")
	select {}
}

// wedgeLock keeps the helper's lock file reachable: its finalizer would
// close it, and release the flock with it, at the next collection.
var wedgeLock *os.File

// TestServeTakesOverFromKilledStuckDaemon: kill -9 a daemon whose push
// waits for a page a READ holds; serve aborts its connection, waits for it
// to die, heals the mount point and serves; the reader gets an error, not
// a hang. As root, and as a user whose daemon mounted through fusermount3
// (the connection's abort file is that user's).
func TestServeTakesOverFromKilledStuckDaemon(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		requireRoot(t)
		requireFUSE(t)
		root := filepath.Join(t.TempDir(), "root")
		mnt := filepath.Join(t.TempDir(), "mnt")
		for _, d := range []string{filepath.Join(root, "locks"), mnt} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(root, 0o711); err != nil {
			t.Fatal(err)
		}
		testTakeOver(t, root, mnt, nil, func(args ...string) result { return gitfs(t, root, args...) },
			func() *daemonProc { return serve(t, root, mnt) })
	})
	t.Run("uid 65534", func(t *testing.T) {
		h := newNonRootHost(t)
		testTakeOver(t, h.root, h.mnt, &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}},
			func(args ...string) result { return h.gitfs(t, args...) }, func() *daemonProc { return h.serve(t) })
	})
}

// helperBinary is the test binary where any user may run it (the build's
// own directory is root's alone).
var helperBinary = sync.OnceValues(func() (string, error) {
	dst := filepath.Join(filepath.Dir(gitfsBin), "integration.test")
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(dst, b, 0o755)
	}
	return dst, err
})

// testTakeOver plays the wedge with a helper running as cred (nil: this
// process's user) and checks that serve, started by start, takes over.
func testTakeOver(t *testing.T, root, mnt string, cred *syscall.Credential, run func(args ...string) result, start func() *daemonProc) {
	bin, err := helperBinary()
	if err != nil {
		t.Fatal(err)
	}
	asUser := func(cmd *exec.Cmd) {
		if cred != nil {
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
	}
	helper := exec.Command(bin)
	helper.Env = append(os.Environ(), wedgeHelperEnv+"="+root+"\n"+mnt, "HOME=/nonexistent")
	asUser(helper)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var helperErr syncBuffer
	helper.Stderr = &helperErr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := make(chan struct{})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var dev uint64
	t.Cleanup(func() {
		// Whatever failed, leave no stuck process or mount behind.
		helper.Process.Kill()
		select {
		case <-helperDone:
		case <-time.After(2 * time.Second):
			if dev != 0 {
				abortConnectionOf(t, dev)
			}
			<-helperDone
		}
		for isMounted(mnt) {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				break
			}
		}
	})
	go func() { helper.Wait(); close(helperDone) }()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			if l != want {
				t.Fatalf("helper said %q, want %q; stderr: %s", l, want, helperErr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("helper did not say %q; stderr: %s", want, helperErr.String())
		}
	}
	expect("mounted")
	if dev = mountDevice(t, mnt); dev == 0 {
		t.Fatalf("no mount at %s after the helper mounted", mnt)
	}
	reader := exec.Command("cat", filepath.Join(mnt, "f"))
	asUser(reader) // a mount without allow_other is its user's alone
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan error, 1)
	go func() { readerDone <- reader.Wait() }()
	t.Cleanup(func() { reader.Process.Kill() })
	expect("storing")

	helper.Process.Signal(syscall.SIGKILL)
	select {
	case <-helperDone:
		t.Fatal("the killed helper died: the push did not wait for the READ's page, so this test tests nothing")
	case <-time.After(time.Second):
	}

	// gitfs doctor says what happened and what to do.
	if r := run("doctor"); r.code != 1 || !strings.Contains(r.stdout, "was killed but cannot exit") || !strings.Contains(r.stdout, "takes over") {
		t.Errorf("gitfs doctor with a killed, stuck daemon: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	d := start()
	if !strings.Contains(d.stderr.String(), "aborting its FUSE connection") {
		t.Errorf("serve took over without saying so:\n%s", d.stderr.String())
	}
	select {
	case <-helperDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck daemon still lives after serve took over")
	}
	select {
	case err := <-readerDone:
		if err == nil {
			t.Error("the reader of the stuck mount read to the end; want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader of the stuck mount still hangs after serve took over")
	}
	if n := mountsAt(mnt); n != 1 {
		t.Errorf("%d mounts at %s, want 1 (the stuck one detached, gitfs's own)", n, mnt)
	}
	if r := run("ws", "list"); r.code != 0 {
		t.Errorf("ws list after the takeover: %s", r.stderr)
	}
}

// mountDevice is the device of the topmost mount at mnt, from
// /proc/self/mountinfo (stat would need the mount to let this user in).
func mountDevice(t *testing.T, mnt string) uint64 {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var dev uint64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[4] != mnt {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(f[2], "%d:%d", &maj, &min); err == nil {
			dev = unix.Mkdev(maj, min)
		}
	}
	return dev
}

// runHelper runs the test binary as a helper process when the
// environment asks for one (TestMain).
func runHelper() (int, bool) {
	if arg := os.Getenv(wedgeHelperEnv); arg != "" {
		return runWedgeHelper(arg), true
	}
	return 0, false
}
