package asuser

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const nobody = 65534

var asNobody = &User{UID: nobody, GID: nobody}

// needRoot skips a test that must run as root, except under CI=true,
// where the tests run as root and a skip would hide a broken setup.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root (euid is %d) and CI=true: run the tests as root", os.Geteuid())
	}
	t.Skipf("needs root to take another user's credentials (euid is %d)", os.Geteuid())
}

// dirAt makes a directory owned by uid:gid with mode under a fresh temp
// dir and opens it. Tests create through the descriptor, so that only
// this directory's permissions matter (t.TempDir's parents are 0700).
func dirAt(t *testing.T, uid, gid int, mode os.FileMode) (string, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return dir, fd
}

func create(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid
}

func TestNilUserRunsDirectly(t *testing.T) {
	var u *User
	called := false
	if err := u.Do(func() error { called = true; return nil }); err != nil || !called {
		t.Fatalf("nil user: called %v, err %v", called, err)
	}
	want := errors.New("fn's error")
	if err := u.Do(func() error { return want }); err != want {
		t.Errorf("nil user: err = %v, want fn's error", err)
	}
	if err := asNobody.Do(nil); err == nil {
		t.Errorf("nil fn accepted")
	}
	if err := (&User{UID: ^uint32(0)}).Do(func() error { return nil }); err == nil {
		t.Errorf("uid -1 accepted")
	}
}

func TestDoChecksAndOwnsAsTheUser(t *testing.T) {
	needRoot(t)
	_, rootDir := dirAt(t, 0, 0, 0o755)
	nobodyPath, nobodyDir := dirAt(t, nobody, nobody, 0o755)
	runtime.LockOSThread() // so that "after Do" is the very thread Do changed
	defer runtime.UnlockOSThread()

	err := asNobody.Do(func() error { return create(rootDir, "f") })
	if !errors.Is(err, unix.EACCES) {
		t.Errorf("create in a root-owned 0755 dir as %d: err = %v, want EACCES", nobody, err)
	}
	if err := asNobody.Do(func() error { return create(nobodyDir, "f") }); err != nil {
		t.Fatalf("create in a %d-owned dir as %d: %v", nobody, nobody, err)
	}
	if uid, gid := owner(t, filepath.Join(nobodyPath, "f")); uid != nobody || gid != nobody {
		t.Errorf("file created as %d is owned by %d:%d", nobody, uid, gid)
	}
	// Back on the same goroutine, root again: creates in the root-owned
	// dir, and owns what it creates.
	if err := create(rootDir, "g"); err != nil {
		t.Fatalf("after Do, create as root: %v", err)
	}
	if err := create(nobodyDir, "g"); err != nil {
		t.Fatalf("after Do, create as root: %v", err)
	}
	if uid, gid := owner(t, filepath.Join(nobodyPath, "g")); uid != 0 || gid != 0 {
		t.Errorf("file created after Do is owned by %d:%d, want root", uid, gid)
	}
	if fsuid, _ := unix.SetfsuidRetUid(-1); fsuid != 0 {
		t.Errorf("fsuid after Do is %d", fsuid)
	}
	// fn's error comes back as it is.
	want := errors.New("fn's error")
	if err := asNobody.Do(func() error { return want }); err != want {
		t.Errorf("err = %v, want fn's error", err)
	}
}

func TestSupplementaryGroups(t *testing.T) {
	needRoot(t)
	const group = 4242
	_, dir := dirAt(t, 0, group, 0o770)
	runtime.LockOSThread() // groups are per thread: compare this thread's
	defer runtime.UnlockOSThread()
	before, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	with := &User{UID: nobody, GID: nobody, Groups: []uint32{100, group}}
	if err := with.Do(func() error { return create(dir, "with") }); err != nil {
		t.Errorf("create in a root:%d 0770 dir with group %d: %v", group, group, err)
	}
	if err := asNobody.Do(func() error { return create(dir, "without") }); !errors.Is(err, unix.EACCES) {
		t.Errorf("create in a root:%d 0770 dir without the group: err = %v, want EACCES", group, err)
	}
	// The primary gid counts as well.
	primary := &User{UID: nobody, GID: group}
	if err := primary.Do(func() error { return create(dir, "primary") }); err != nil {
		t.Errorf("create with primary gid %d: %v", group, err)
	}
	// The thread's own groups are back.
	after, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("groups after Do are %v, were %v", after, before)
	}
}

// TestPanicRestores: a panic in fn does not leave the thread as the user.
func TestPanicRestores(t *testing.T) {
	needRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	func() {
		defer func() { recover() }()
		asNobody.Do(func() error { panic("boom") })
	}()
	if fsuid, _ := unix.SetfsuidRetUid(-1); fsuid != 0 {
		t.Errorf("fsuid after a panic in Do is %d", fsuid)
	}
}

// TestConcurrentNeverLeaks: while many goroutines run as the user, files
// created by other goroutines (on whatever threads the scheduler gives
// them, including ones started meanwhile) stay root's.
func TestConcurrentNeverLeaks(t *testing.T) {
	needRoot(t)
	rootPath, rootDir := dirAt(t, 0, 0, 0o777) // world-writable: a leak would not fail the create
	nobodyPath, nobodyDir := dirAt(t, nobody, nobody, 0o755)
	const users, roots, each = 8, 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, users+roots)
	for g := 0; g < users; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := asNobody.Do(func() error {
					runtime.Gosched() // give the scheduler every chance to move others here
					return create(nobodyDir, fmt.Sprintf("u%d-%d", g, i))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	for g := 0; g < roots; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := create(rootDir, fmt.Sprintf("r%d-%d", g, i)); err != nil {
					errs <- err
					return
				}
				if i%50 == 0 {
					// Ask for new threads now and then: they must be clean.
					var inner sync.WaitGroup
					inner.Add(1)
					go func() {
						defer inner.Done()
						runtime.LockOSThread() // a fresh thread when this one exits locked
						if err := create(rootDir, fmt.Sprintf("t%d-%d", g, i)); err != nil {
							errs <- err
						}
					}()
					inner.Wait()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	check := func(dir string, uid uint32, want int) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != want {
			t.Errorf("%s has %d entries, want %d", dir, len(entries), want)
		}
		for _, e := range entries {
			if u, g := owner(t, filepath.Join(dir, e.Name())); u != uid || g != uid {
				t.Errorf("%s is owned by %d:%d, want %d:%d", e.Name(), u, g, uid, uid)
			}
		}
	}
	check(rootPath, 0, roots*each+roots*(each/50))
	check(nobodyPath, nobody, users*each)
}

// TestNotRoot: a process that is not root acts only as itself.
func TestNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs as root: the non-root rules are exercised by unprivileged runs")
	}
	me := &User{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if err := me.Do(func() error { return nil }); err != nil {
		t.Errorf("acting as myself: %v", err)
	}
	if err := (&User{UID: me.UID + 1}).Do(func() error { return nil }); err == nil {
		t.Errorf("a non-root process acted as another user")
	}
}

func BenchmarkDo(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	u := &User{UID: nobody, GID: nobody, Groups: []uint32{100}}
	for b.Loop() {
		if err := u.Do(func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
