package locks

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

func TestFoundationKeyed(t *testing.T) {
	var k Keyed
	var inside [2]atomic.Int32
	var maxInside [2]atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(key int) {
			defer wg.Done()
			unlock := k.Lock(fmt.Sprint("key", key))
			n := inside[key].Add(1)
			if n > maxInside[key].Load() {
				maxInside[key].Store(n)
			}
			time.Sleep(time.Millisecond)
			inside[key].Add(-1)
			unlock()
		}(i % 2)
	}
	wg.Wait()
	for key := range maxInside {
		if got := maxInside[key].Load(); got != 1 {
			t.Errorf("key%d: %d holders at once, want 1", key, got)
		}
	}
	if n := len(k.locks); n != 0 {
		t.Errorf("%d unused entries left in the map", n)
	}
	// Different keys do not block each other.
	u1 := k.Lock("a")
	done := make(chan struct{})
	go func() { k.Lock("b")(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lock b waited for lock a")
	}
	u1()
}

// TestFoundationFlockModes is the compatibility matrix of shared and exclusive flocks
// held through different descriptors (as different processes would).
func TestFoundationFlockModes(t *testing.T) {
	tests := []struct {
		name         string
		held, wanted string // "sh" or "ex"
		wantGranted  bool
	}{
		{"shared+shared", "sh", "sh", true},
		{"shared+exclusive", "sh", "ex", false},
		{"exclusive+shared", "ex", "sh", false},
		{"exclusive+exclusive", "ex", "ex", false},
	}
	take := func(ctx context.Context, mode, path string) (*File, error) {
		if mode == "sh" {
			return Shared(ctx, path)
		}
		return Exclusive(ctx, path)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "x.lock") // parent is created
			held, err := take(context.Background(), tc.held, path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			second, err := take(ctx, tc.wanted, path)
			if granted := err == nil; granted != tc.wantGranted {
				t.Fatalf("second %s lock granted=%v (err %v), want %v", tc.wanted, granted, err, tc.wantGranted)
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("refused lock: %v, want a deadline error", err)
			}
			if tc.held == "ex" || tc.wanted == "ex" {
				if _, err := TryExclusive(path); !errors.Is(err, ErrWouldBlock) {
					t.Fatalf("TryExclusive while held: %v, want ErrWouldBlock", err)
				}
			}
			second.Unlock()
			held.Unlock()
			held.Unlock() // idempotent
			l, err := TryExclusive(path)
			if err != nil {
				t.Fatalf("TryExclusive after release: %v", err)
			}
			l.Unlock()
		})
	}
}

// TestFoundationWaiterGetsLockOnRelease: a blocked Exclusive proceeds once the holder
// unlocks.
func TestFoundationWaiterGetsLockOnRelease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	held, err := Exclusive(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := Exclusive(context.Background(), path)
		if err == nil {
			l.Unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second exclusive lock granted while held: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	held.Unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter never got the lock")
	}
}

// helperEnv makes the test binary act as a lock-holding process.
const helperEnv = "GITFS_LOCKS_TEST_HOLD"

// TestFoundationHelperHoldLock is not a test: run by TestFoundationFlockProcessDeath in a child
// process, it takes the lock named by $GITFS_LOCKS_TEST_HOLD, starts a child
// of its own (standing in for git), prints that child's pid and waits.
func TestFoundationHelperHoldLock(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	l, err := Exclusive(context.Background(), path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(child.Process.Pid)
	time.Sleep(time.Minute)
	l.Unlock()
	os.Exit(0)
}

// TestFoundationFlockProcessDeath: the kernel drops a flock when its holder is killed
// with SIGKILL, and a child the holder started (as git is) does not inherit
// the lock's descriptor, so it cannot keep the lock alive after its parent.
func TestFoundationFlockProcessDeath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mirror.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFoundationHelperHoldLock$", "-test.v=false")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	helperDone := false
	t.Cleanup(func() {
		if !helperDone {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	childPid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("helper said %q", line)
	}
	t.Cleanup(func() { syscall.Kill(childPid, syscall.SIGKILL) })

	if _, err := TryExclusive(path); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("lock not held by the helper: %v", err)
	}
	// The child has no descriptor of the lock file.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", childPid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", childPid, fd.Name()))
		if target == path {
			t.Fatalf("child process inherited the lock descriptor (fd %s)", fd.Name())
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	helperDone = true
	if err := syscall.Kill(childPid, 0); err != nil {
		t.Fatalf("the helper's child should outlive it for this test: %v", err)
	}
	l, err := TryExclusive(path)
	if err != nil {
		t.Fatalf("lock still held after its holder was killed (its child lives on): %v", err)
	}
	l.Unlock()
}

func TestFoundationPublish(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, target string) // what exists at target before
		wantErr error
		want    string // content of target/id afterwards
	}{
		{"absent target", func(*testing.T, string) {}, nil, "mine"},
		{"non-empty target", func(t *testing.T, target string) {
			mustMkdir(t, target)
			mustWrite(t, filepath.Join(target, "id"), "winner")
		}, ErrPublishedByOther, "winner"},
		{"empty dir target", func(t *testing.T, target string) {
			// plain rename(2) would replace an empty directory
			mustMkdir(t, target)
		}, ErrPublishedByOther, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "thing")
			tc.prepare(t, target)
			tmp, err := TempDir(target)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(filepath.Base(tmp), "thing"+TempMarker+strconv.Itoa(os.Getpid())+"-") {
				t.Errorf("temp name %s does not carry the pid", tmp)
			}
			mustWrite(t, filepath.Join(tmp, "id"), "mine")
			err = Publish(tmp, target)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Publish: %v, want %v", err, tc.wantErr)
			}
			if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
				t.Errorf("temp dir %s still exists after Publish", tmp)
			}
			b, _ := os.ReadFile(filepath.Join(target, "id"))
			if string(b) != tc.want {
				t.Errorf("target holds %q, want %q", b, tc.want)
			}
			assertNoTemps(t, filepath.Dir(target))
		})
	}
}

// TestFoundationPublishRace: of many concurrent builders exactly one wins; every loser
// gets ErrPublishedByOther and its temp dir is gone.
func TestFoundationPublishRace(t *testing.T) {
	target := filepath.Join(t.TempDir(), "thing")
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		tmp, err := TempDir(target)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, filepath.Join(tmp, "id"), strconv.Itoa(i))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs[i] = Publish(tmp, target)
		}(i)
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("builders %d and %d both published", winner, i)
			}
			winner = i
		case !errors.Is(err, ErrPublishedByOther):
			t.Fatalf("builder %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody published")
	}
	b, _ := os.ReadFile(filepath.Join(target, "id"))
	if string(b) != strconv.Itoa(winner) {
		t.Fatalf("target holds builder %s's copy, winner was %d", b, winner)
	}
	assertNoTemps(t, filepath.Dir(target))
}

func TestFoundationCleanStale(t *testing.T) {
	// A live process that is not us, and a pid that is surely dead.
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		suffix   string // after "<target>"
		wantKept bool
	}{
		{"dead builder", TempMarker + strconv.Itoa(dead.Process.Pid) + "-aa", false},
		{"live builder", TempMarker + strconv.Itoa(live.Process.Pid) + "-bb", true},
		{"this process", TempMarker + strconv.Itoa(os.Getpid()) + "-cc", true},
		{"unparsable pid", TempMarker + "x-dd", false},
		{"another target", "x" + TempMarker + strconv.Itoa(dead.Process.Pid) + "-ee", true},
		{"the target itself", "", true},
	}
	variants := map[string]func(target string){
		"path": CleanStale,
		"at": func(target string) {
			fd := openPath(t, filepath.Dir(target))
			CleanStaleAt(fd, filepath.Base(target))
		},
	}
	for vname, clean := range variants {
		t.Run(vname, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "thing")
			for _, tc := range tests {
				mustMkdir(t, target+tc.suffix)
				mustWrite(t, filepath.Join(target+tc.suffix, "f"), "x")
			}
			clean(target)
			for _, tc := range tests {
				_, err := os.Stat(target + tc.suffix)
				if kept := err == nil; kept != tc.wantKept {
					t.Errorf("%s: kept=%v, want %v", tc.name, kept, tc.wantKept)
				}
			}
		})
	}
}

func openPath(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestTempDirAt(t *testing.T) {
	dir := t.TempDir()
	fd := openPath(t, dir)
	a, err := TempDirAt(fd, "thing")
	if err != nil {
		t.Fatal(err)
	}
	b, err := TempDirAt(fd, "thing")
	if err != nil {
		t.Fatal(err)
	}
	if a == b || !strings.HasPrefix(a, "thing"+TempMarker+strconv.Itoa(os.Getpid())+"-") {
		t.Errorf("temp names %q, %q: want distinct, carrying the pid", a, b)
	}
	if fi, err := os.Lstat(filepath.Join(dir, a)); err != nil || !fi.IsDir() {
		t.Errorf("temp dir %s not created in the directory: %v", a, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "/abs"} {
		if name, err := TempDirAt(fd, bad); err == nil {
			t.Errorf("TempDirAt(%q) accepted, made %q", bad, name)
		}
	}
}

// TestRemoveAllAt: a whole tree goes, a symlink in it is removed and not
// followed, and only single names are accepted.
func TestRemoveAllAt(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	mustMkdir(t, outside)
	mustWrite(t, filepath.Join(outside, "keep"), "x")
	tree := filepath.Join(dir, "tree")
	mustMkdir(t, filepath.Join(tree, "a", "b", "c"))
	mustWrite(t, filepath.Join(tree, "a", "b", "c", "f"), "x")
	mustWrite(t, filepath.Join(tree, "top"), "x")
	if err := os.Symlink(outside, filepath.Join(tree, "a", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "toplink")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3000; i++ { // more than one getdents buffer
		mustWrite(t, filepath.Join(tree, "a", fmt.Sprintf("many-%04d", i)), "")
	}
	fd := openPath(t, dir)
	for _, name := range []string{"tree", "toplink", "absent"} {
		if err := RemoveAllAt(fd, name); err != nil {
			t.Fatalf("RemoveAllAt(%s): %v", name, err)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a symlink was followed: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "outside/keep"} {
		if err := RemoveAllAt(fd, bad); err == nil {
			t.Errorf("RemoveAllAt(%q) accepted", bad)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("a refused name removed something: %v", err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func assertNoTemps(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), TempMarker) {
			t.Errorf("temp dir left behind: %s", e.Name())
		}
	}
}

// TestRemoveUnheld: a lock file is removed only when no one holds it, and
// a waiter that opened it before the removal ends up holding the lock on
// the file the path names afterwards, so that it still excludes others.
func TestRemoveUnheld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	held, err := Shared(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := RemoveUnheld(path); removed || err != nil {
		t.Fatalf("RemoveUnheld of a held lock: %v, %v", removed, err)
	}
	held.Unlock()
	if removed, err := RemoveUnheld(path); !removed || err != nil {
		t.Fatalf("RemoveUnheld of a free lock: %v, %v", removed, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file still there: %v", err)
	}

	// The race RemoveUnheld relies on: B opens the file, A removes it
	// under the lock, B gets the lock only then.
	a, err := Exclusive(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *File)
	go func() {
		b, err := Exclusive(context.Background(), path)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	time.Sleep(20 * time.Millisecond) // let B open the old file and wait
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	a.Unlock()
	b := <-got
	defer b.Unlock()
	if _, err := TryExclusive(path); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("B's lock does not exclude a new taker: %v", err)
	}
}
