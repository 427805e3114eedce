//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A daemon that dies leaves its mount behind, dead: every access to it
// fails with ENOTCONN. These tests check that the next `serve` heals that
// by itself, that a live mount is never taken over, and that a daemon
// whose FUSE connection is aborted exits instead of serving nothing.

// writerContent is what writer w puts in its i-th file.
func writerContent(w, i int) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("writer %d file %d\n", w, i)), 64+i%7)
}

// TestServeHealsDeadMountAfterKill9 is the test 1: kill -9 the
// daemon while 4 readers and 2 writers run, then `serve` on the same
// mount point with no manual step: it detaches the dead mount, mounts,
// and every file fsynced before the kill is intact.
func TestServeHealsDeadMountAfterKill9(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	repo, _ := newRemote(t, 120, 15)
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mnt := filepath.Join(t.TempDir(), "mnt")
	d := serve(t, root, mnt)
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	var lower []string
	filepath.WalkDir(ws, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			lower = append(lower, p)
		}
		return nil
	})
	if len(lower) == 0 {
		t.Fatal("workspace shows no files")
	}
	if err := os.Mkdir(filepath.Join(ws, "out"), 0o755); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var reads, syncs atomic.Int64
	stop := make(chan struct{})
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; !stopped(); i++ {
				if _, err := os.ReadFile(lower[i%len(lower)]); err != nil {
					return // the daemon is gone
				}
				reads.Add(1)
			}
		}()
	}
	durable := make([][]int, 2) // per writer: files fsynced and closed
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopped(); i++ {
				f, err := os.Create(filepath.Join(ws, "out", fmt.Sprintf("w%d-%04d", w, i)))
				if err != nil {
					return
				}
				_, err = f.Write(writerContent(w, i))
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return
				}
				durable[w] = append(durable[w], i)
				syncs.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Minute)
	for reads.Load() < 200 || syncs.Load() < 40 {
		if time.Now().After(deadline) {
			t.Fatalf("readers and writers made too little progress: %d reads, %d fsyncs", reads.Load(), syncs.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	close(stop)
	stuck := false
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		// The kill landed while the daemon pushed a page into the page
		// cache that a reader's READ held locked: its last thread waits
		// in the kernel for that page and the READ for the dead daemon.
		// The readers stay blocked until serve, below, sees the stuck
		// daemon and aborts its connection (TestServeTakesOverFromKilledStuckDaemon
		// plays this for certain).
		stuck = true
		t.Logf("the killed daemon is stuck in the kernel (a push raced a READ): serve must take over")
	}
	readersDone := make(chan struct{})
	go func() { wg.Wait(); close(readersDone) }()
	if !stuck {
		<-readersDone
		if !isMounted(mnt) {
			t.Fatal("the killed daemon left no mount behind: this test would test nothing")
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(mnt, &sfs); !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
			t.Fatalf("statfs of the dead mount: %v, want ENOTCONN", err)
		}
		// gitfs doctor sees it and says what to do.
		if r := gitfs(t, root, "doctor"); r.code != 1 || !strings.Contains(r.stdout, "dead gitfs mount at "+mnt) || !strings.Contains(r.stdout, "serve --mountpoint "+mnt) {
			t.Errorf("gitfs doctor with a dead mount: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	}

	d2 := serve(t, root, mnt)
	if !strings.Contains(d2.stderr.String(), "detached the dead mount") {
		t.Errorf("serve healed the mount point without saying so:\n%s", d2.stderr.String())
	}
	if n := mountsAt(mnt); n != 1 {
		t.Errorf("%d mounts stacked at %s, want 1 (the dead one must be detached, not mounted over)", n, mnt)
	}
	select {
	case <-readersDone:
	case <-time.After(20 * time.Second):
		t.Fatal("readers of the dead mount still blocked after serve healed it")
	}
	n := 0
	for w, is := range durable {
		for _, i := range is {
			got, err := os.ReadFile(filepath.Join(ws, "out", fmt.Sprintf("w%d-%04d", w, i)))
			if err != nil {
				t.Fatalf("fsynced before the kill, now: %v", err)
			}
			if !bytes.Equal(got, writerContent(w, i)) {
				t.Fatalf("writer %d file %d: fsynced content changed (%d bytes)", w, i, len(got))
			}
			n++
		}
	}
	if _, err := os.ReadFile(lower[0]); err != nil {
		t.Fatalf("read after healing: %v", err)
	}
	t.Logf("%d reads and %d fsynced files before kill -9; all %d intact after serve healed the mount", reads.Load(), syncs.Load(), n)
}

// TestServeRefusesMountpointOfLiveDaemon: a mount point another daemon
// serves is never detached or mounted over.
func TestServeRefusesMountpointOfLiveDaemon(t *testing.T) {
	rootA := filepath.Join(t.TempDir(), "a")
	rootB := filepath.Join(t.TempDir(), "b")
	mnt := filepath.Join(t.TempDir(), "mnt")
	serve(t, rootA, mnt)
	r := gitfsCtx(t, withTimeout(t, time.Minute), rootB, "serve", "--mountpoint", mnt)
	if r.code == 0 || !strings.Contains(r.stderr, "already mounted") {
		t.Fatalf("second serve on a live mount: exit %d: %s", r.code, r.stderr)
	}
	if !isOneErrorLine(r.stderr) {
		t.Errorf("want one error line, got:\n%s", r.stderr)
	}
	mustGitfs(t, rootA, "ws", "list")
}

// TestAbortedConnectionExitsAndServeRecovers is the test 2: after
// its FUSE connection is aborted the daemon exits non-zero (within 10 s,
// not hanging), and the next serve mounts again with the workspace intact.
func TestAbortedConnectionExitsAndServeRecovers(t *testing.T) {
	requireRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	repo, _ := newRemote(t, 20, 16)
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mnt := filepath.Join(t.TempDir(), "mnt")
	d := serve(t, root, mnt)
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	if err := os.WriteFile(filepath.Join(ws, "kept.txt"), []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A process inside the mount, as a build would be.
	f, err := os.Open(ws)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	abortConnection(t, mnt)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon still running 10 s after its FUSE connection was aborted:\n%s", d.stderr.String())
	}
	if code := d.cmd.ProcessState.ExitCode(); code == 0 {
		t.Fatalf("daemon exited 0 after its connection was aborted:\n%s", d.stderr.String())
	}
	if !strings.Contains(d.stderr.String(), "aborted") {
		t.Errorf("the daemon's exit does not say the connection was aborted:\n%s", d.stderr.String())
	}
	f.Close()

	serve(t, root, mnt)
	got, err := os.ReadFile(filepath.Join(ws, "kept.txt"))
	if err != nil || string(got) != "kept\n" {
		t.Fatalf("after recovery: %q, %v", got, err)
	}
}

// abortConnection writes to the abort file of mnt's FUSE connection
// (/sys/fs/fuse/connections/N/abort, N the minor of the mount's device),
// mounting fusectl there first if the system has not (systemd does at
// boot; a minimal container may not).
func abortConnection(t *testing.T, mnt string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	abortConnectionOf(t, uint64(st.Dev))
}

// abortConnectionOf is abortConnection of the mount whose device is dev.
func abortConnectionOf(t *testing.T, dev uint64) {
	t.Helper()
	const ctl = "/sys/fs/fuse/connections"
	dir := filepath.Join(ctl, strconv.FormatUint(uint64(unix.Minor(dev)), 10))
	if _, err := os.Stat(dir); err != nil {
		if err := unix.Mount("fusectl", ctl, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			t.Fatalf("mount fusectl on %s: %v", ctl, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "abort"), []byte("1\n"), 0); err != nil {
		t.Fatalf("abort FUSE connection: %v", err)
	}
}

// mountsAt counts the mounts at dir in /proc/mounts, stacked ones too.
func mountsAt(dir string) int {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == dir {
			n++
		}
	}
	return n
}
