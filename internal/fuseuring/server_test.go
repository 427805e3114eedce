//go:build linux

package fuseuring

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// setEnable sets the fuse module's enable_uring for the test and puts it
// back after. Connections that do not ask for io_uring at INIT (every
// other mount) are not affected by it.
func setEnable(t *testing.T, on bool) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs the tests as root: mount(2) and enable_uring need it")
		}
		t.Skip("needs root: mount(2) and the fuse module's enable_uring")
	}
	if err := Enabled(); err != nil && os.IsNotExist(errors.Unwrap(err)) {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	restore, err := SetEnabled(on)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	})
}

// mountLoopback serves a go-fuse loopback of a new directory at a new
// mount point through a Server, and returns both directories.
func mountLoopback(t *testing.T, o Options) (*Server, string, string) {
	srv, _, backing, mnt := mountLoopbackRoot(t, o)
	return srv, backing, mnt
}

func mountLoopbackRoot(t *testing.T, o Options) (*Server, *gofs.Inode, string, string) {
	t.Helper()
	backing, mnt := t.TempDir(), t.TempDir()
	root, err := gofs.NewLoopbackRoot(backing)
	if err != nil {
		t.Fatal(err)
	}
	mopts := fuse.MountOptions{Name: "fuseuringtest", MaxWrite: 1 << 20}
	srv := New(mopts, o)
	raw := gofs.NewNodeFS(root, &gofs.Options{ServerCallbacks: srv})
	if err := srv.Mount(mnt, raw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return srv, root.EmbeddedInode(), backing, mnt
}

// sh runs script in a shell of its own: every process that waits on the
// mount is another process than the one serving it, so that a server bug
// (a request never answered) fails the test instead of leaving this
// process unkillable, waiting on itself.
func sh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-ec", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// exercise makes, reads, lists, renames and removes files from several
// processes at once, more than a queue's depth, and checks every answer.
func exercise(t *testing.T, mnt string) {
	t.Helper()
	sh(t, `cd `+mnt+`
for w in $(seq 24); do (
	mkdir w$w
	for i in $(seq 20); do
		head -c $((4096 * (i % 5) + i)) /dev/urandom > /tmp/fuseuring.$$.$w
		cp /tmp/fuseuring.$$.$w w$w/f$i
		cmp /tmp/fuseuring.$$.$w w$w/f$i
		mv w$w/f$i w$w/f$i.moved
	done
	rm /tmp/fuseuring.$$.$w
	test "$(ls w$w | wc -l)" = 20
	rm -r w$w
) & done
wait
test -z "$(ls)"`)
}

func TestServeThroughQueues(t *testing.T) {
	setEnable(t, true)
	srv, backing, mnt := mountLoopback(t, Options{Depth: 2})
	if srv.Queues() == 0 {
		t.Fatal("no io_uring queue: the kernel serves this mount through /dev/fuse alone")
	}
	exercise(t, mnt)
	// A large write and read: a request's data fills a whole payload.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB
	if err := os.WriteFile(filepath.Join(backing, "src"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "dd if="+mnt+"/src of="+mnt+"/big bs=1M 2>/dev/null && echo 3 > /proc/sys/vm/drop_caches && cmp "+mnt+"/src "+mnt+"/big")
	if got, err := os.ReadFile(filepath.Join(backing, "big")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("backing file: %d bytes, %v", len(got), err)
	}
	ring, dev := srv.Requests()
	t.Logf("requests: %d through the queues, %d through /dev/fuse", ring, dev)
	if ring < 24*20*4 {
		t.Errorf("only %d requests came through the queues", ring)
	}
}

// TestNotifications: what the file system tells the kernel reaches it
// through the Server's own writes to /dev/fuse.
func TestNotifications(t *testing.T) {
	setEnable(t, true)
	_, root, backing, mnt := mountLoopbackRoot(t, Options{})
	p := filepath.Join(mnt, "f")
	sh(t, "echo old > "+p)
	f := root.GetChild("f")
	if f == nil {
		t.Fatal("no node for f")
	}
	// The loopback's opens drop the page cache: the store's effect is not
	// seen by a later read, only that the kernel took it.
	if errno := f.WriteCache(0, []byte("new\n")); errno != 0 {
		t.Fatalf("store: %v", errno)
	}
	// Attributes are cached for a second: a change behind the kernel's
	// back shows only once they are dropped.
	if got := sh(t, "stat -c %s "+p); got != "4\n" {
		t.Fatalf("size %q", got)
	}
	if err := os.WriteFile(filepath.Join(backing, "f"), []byte("longer now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if errno := f.NotifyContent(0, 0); errno != 0 {
		t.Fatalf("inval inode: %v", errno)
	}
	if got := sh(t, "stat -c %s "+p); got != "11\n" {
		t.Errorf("after NOTIFY_INVAL_INODE the size is %q, want 11", got)
	}
	sh(t, "test ! -e "+mnt+"/g") // a negative entry, cached
	if err := os.WriteFile(filepath.Join(backing, "g"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if errno := root.NotifyEntry("g"); errno != 0 {
		t.Errorf("inval entry: %v", errno)
	}
	sh(t, "test -e "+mnt+"/g")
}

// TestWithoutQueues: with enable_uring off the kernel declines io_uring
// at INIT, and everything is served through /dev/fuse.
func TestWithoutQueues(t *testing.T) {
	setEnable(t, false)
	srv, _, mnt := mountLoopback(t, Options{})
	if srv.Queues() != 0 {
		t.Fatalf("%d queues with enable_uring off", srv.Queues())
	}
	exercise(t, mnt)
	if ring, _ := srv.Requests(); ring != 0 {
		t.Errorf("%d requests through queues that do not exist", ring)
	}
}
