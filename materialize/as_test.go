//go:build linux

package materialize

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/asuser"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

const nobody = 65534

var asNobody = &asuser.User{UID: nobody, GID: nobody}

// needRoot skips a test that must run as root, except under CI=true,
// where the tests run as root and a skip would hide a broken setup.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("needs root (euid is %d) and CI=true: run the tests as root", os.Geteuid())
	}
	t.Skipf("needs root to write as another user (euid is %d)", os.Geteuid())
}

// ownedDir makes a directory owned by uid:gid with mode and opens it as
// the daemon would get it from a caller: an O_PATH descriptor. t.TempDir's
// own parents are root's 0700: through the descriptor only this
// directory's permissions matter, as for a caller's descriptor.
func ownedDir(t testing.TB, uid, gid int, mode os.FileMode) (string, int) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "parent")
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

// ownersAndModes walks dir (itself included, as ".") and gives every
// entry's owner and mode.
func ownersAndModes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, st.Mode)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func userTree() *fakeSrc {
	f := newFake()
	return f.withRoot(
		f.file("README", "hello\n"),
		f.exec("run.sh", "#!/bin/sh\n"),
		f.link("link", "README"),
		f.dir("a", f.dir("b", f.file("c.txt", "c"), f.file("big", strings.Repeat("x", 1<<20))), f.link("up", "../README")),
		snapshot.Entry{Name: "module", Kind: snapshot.Gitlink, ID: f.id()},
	)
}

// TestCheckoutAtAsUser: every file, directory and symlink of the result,
// the target itself and .git included, is the user's; modes and contents
// are what a checkout as the daemon gives.
func TestCheckoutAtAsUser(t *testing.T) {
	needRoot(t)
	src := userTree()
	dir, pfd := ownedDir(t, nobody, nobody, 0o755)
	stats, err := checkoutAt(context.Background(), src, pfd, "out", "", Options{As: asNobody, Workers: 2, Git: true}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Files != 4 || stats.Symlinks != 2 || stats.Dirs != 3 {
		t.Errorf("stats = %+v", stats)
	}
	out := filepath.Join(dir, "out")
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := checkout(context.Background(), src, ref, Options{Workers: 2, Git: true}, defaultLimits); err != nil {
		t.Fatal(err)
	}
	refTree, outTree := readTree(t, ref), readTree(t, out)
	delete(refTree, ".git/index") // stat data (inodes, ctimes) differ, of course
	delete(outTree, ".git/index")
	if d := diffMaps(refTree, outTree); len(d) > 0 {
		t.Errorf("checkout as %d differs from one as root: %v", nobody, d)
	}
	got, want := ownersAndModes(t, out), ownersAndModes(t, ref)
	if len(got) != len(want) {
		t.Errorf("%d entries, want %d", len(got), len(want))
	}
	for p, g := range got {
		owner, mode, _ := strings.Cut(g, " ")
		if owner != fmt.Sprintf("%d:%d", nobody, nobody) {
			t.Errorf("%s is owned by %s, want %d:%d", p, owner, nobody, nobody)
		}
		if _, wantMode, _ := strings.Cut(want[p], " "); mode != wantMode {
			t.Errorf("%s has mode %s, want %s as in a checkout as root", p, mode, wantMode)
		}
	}
	assertOnly(t, dir, "out")
}

// TestCheckoutAtAsUserRefused: where the user may not write, the checkout
// fails with a permission error and leaves nothing (no temp dir), and
// another user's empty target in a sticky directory is not replaced.
func TestCheckoutAtAsUserRefused(t *testing.T) {
	needRoot(t)
	src := userTree()
	for _, mode := range []os.FileMode{0o755, 0o700} {
		t.Run(fmt.Sprintf("root %o", mode), func(t *testing.T) {
			dir, pfd := ownedDir(t, 0, 0, mode)
			_, err := checkoutAt(context.Background(), src, pfd, "out", "", Options{As: asNobody, Workers: 2}, defaultLimits)
			if !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("checkout as %d into a root-owned %o dir: err = %v, want a permission error", nobody, mode, err)
			}
			assertOnly(t, dir)
		})
	}
	t.Run("sticky", func(t *testing.T) {
		dir, pfd := ownedDir(t, 0, 0, 0o777|os.ModeSticky)
		theirs := filepath.Join(dir, "out")
		if err := os.Mkdir(theirs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(theirs, 1234, 1234); err != nil {
			t.Fatal(err)
		}
		_, err := checkoutAt(context.Background(), src, pfd, "out", "", Options{As: asNobody}, defaultLimits)
		if err == nil {
			t.Fatalf("checkout as %d replaced uid 1234's empty dir in a sticky dir", nobody)
		}
		var st unix.Stat_t
		if err := unix.Lstat(theirs, &st); err != nil || st.Uid != 1234 {
			t.Errorf("uid 1234's dir: %v, owner %d", err, st.Uid)
		}
		assertOnly(t, dir, "out")
	})
	// A failure after the temp dir exists removes it, as the user.
	t.Run("missing blob", func(t *testing.T) {
		f := newFake()
		bad := f.withRoot(f.file("a", "1"), snapshot.Entry{Name: "gone", Kind: snapshot.File, ID: f.id()})
		dir, pfd := ownedDir(t, nobody, nobody, 0o755)
		if _, err := checkoutAt(context.Background(), bad, pfd, "out", "", Options{As: asNobody, Workers: 2}, defaultLimits); err == nil || !strings.Contains(err.Error(), "gone") {
			t.Errorf("missing blob: err = %v", err)
		}
		assertOnly(t, dir)
	})
}

// TestCheckoutAsUserResolvesAsUser: Checkout's path is resolved as the
// user too: through a root-only directory it fails.
func TestCheckoutAsUserResolvesAsUser(t *testing.T) {
	needRoot(t)
	hidden := filepath.Join(t.TempDir(), "hidden") // root's 0700
	if err := os.Mkdir(hidden, 0o700); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(hidden, "mine")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(inside, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	_, err := checkout(context.Background(), userTree(), filepath.Join(inside, "out"), Options{As: asNobody}, defaultLimits)
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("checkout as %d through a root 0700 dir: err = %v, want a permission error", nobody, err)
	}
	assertOnly(t, inside)
}

// TestFinishRunsAsUser: Finish runs with the user's credentials, so what
// it creates is the user's.
func TestFinishRunsAsUser(t *testing.T) {
	needRoot(t)
	dir, pfd := ownedDir(t, nobody, nobody, 0o755)
	var fsuid int
	_, err := checkoutAt(context.Background(), userTree(), pfd, "out", "", Options{As: asNobody, Finish: func(root *os.Root) error {
		fsuid, _ = unix.SetfsuidRetUid(-1)
		if err := root.Mkdir("new", 0o755); err != nil {
			return err
		}
		return root.WriteFile("new/added", []byte("x"), 0o644)
	}}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if fsuid != nobody {
		t.Errorf("Finish ran with fsuid %d, want %d", fsuid, nobody)
	}
	for _, p := range []string{"new", "new/added"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, "out", p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != nobody || st.Gid != nobody {
			t.Errorf("%s made by Finish is owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, nobody, nobody)
		}
	}
}

// TestCheckoutAtNames: the target is one path element, and the parent a
// directory descriptor; anything else is refused before anything is made.
func TestCheckoutAtNames(t *testing.T) {
	dir := t.TempDir()
	pfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "sub/out", "/tmp/out", "a\x00b", "sub/"} {
		if _, err := checkoutAt(context.Background(), userTree(), pfd, name, "", Options{}, defaultLimits); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	assertOnly(t, dir, "sub")
	assertOnly(t, filepath.Join(dir, "sub"))
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ffd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ffd)
	for _, fd := range []int{-1, ffd, 1 << 20} {
		if _, err := checkoutAt(context.Background(), userTree(), fd, "out", "", Options{}, defaultLimits); err == nil {
			t.Errorf("parent descriptor %d accepted", fd)
		}
	}
	// The public entry point refuses a nil snapshot before looking.
	if _, err := CheckoutAt(context.Background(), nil, pfd, "out", Options{}); err == nil {
		t.Errorf("nil snapshot accepted")
	}
	// And a good name works, through an O_RDONLY descriptor too.
	rfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	if _, err := checkoutAt(context.Background(), userTree(), rfd, "out", "", Options{}, defaultLimits); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "out", "README")); string(b) != "hello\n" {
		t.Errorf("checkout through an O_RDONLY descriptor: README = %q", b)
	}
}

// TestCheckoutAtPathMax: the PATH_MAX rule counts the parent's full path,
// learned from the descriptor.
func TestCheckoutAtPathMax(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("p", 200)
	for len(dir) < 3000 {
		dir = filepath.Join(dir, long)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	f := newFake()
	e := f.file(long, "x")
	for i := 0; i < 5; i++ { // ~1200 bytes: fine alone, too long under dir
		e = f.dir(long, e)
	}
	src := f.withRoot(e)
	_, err = checkoutAt(context.Background(), src, pfd, "out", "", Options{}, defaultLimits)
	var re *RefusedError
	if !errors.As(err, &re) || re.Rule != rulePathMax {
		t.Fatalf("err = %v, want the PATH_MAX rule", err)
	}
	assertOnly(t, dir)
	if _, err := checkoutAt(context.Background(), src, pfd, "out", "out", Options{}, defaultLimits); err != nil {
		t.Fatalf("the same tree under a short path: %v", err)
	}
}

// assertOnly checks that dir holds exactly names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// benchTree is 20k files: 200 directories of 100 files, 0.1 to 8 KiB.
func benchTree() *fakeSrc {
	f := newFake()
	sizes := []int{100, 500, 1000, 2000, 4000, 8000}
	contents := make([][]byte, len(sizes))
	for i, n := range sizes {
		contents[i] = []byte(strings.Repeat("x", n))
	}
	var dirs []snapshot.Entry
	for d := 0; d < 200; d++ {
		var files []snapshot.Entry
		for i := 0; i < 100; i++ {
			id := f.id()
			f.blobs[id] = contents[(d+i)%len(contents)]
			files = append(files, snapshot.Entry{Name: fmt.Sprintf("f%03d.txt", i), Kind: snapshot.File, ID: id})
		}
		dirs = append(dirs, f.dir(fmt.Sprintf("d%03d", d), files...))
	}
	return f.withRoot(dirs...)
}

// BenchmarkCheckoutAs times a 20k-file checkout (200 directories of 100
// files, 0.1 to 8 KiB) written by the daemon's credentials and as a user:
//
//	go test ./materialize -run XXX -bench CheckoutAs -benchtime 5x -count 5
func BenchmarkCheckoutAs(b *testing.B) {
	needRoot(b)
	src := benchTree()
	for _, tc := range []struct {
		name string
		as   *asuser.User
	}{{"daemon", nil}, {"as-65534", asNobody}} {
		b.Run(tc.name, func(b *testing.B) {
			_, pfd := ownedDir(b, nobody, nobody, 0o755)
			n := 0
			for b.Loop() {
				name := fmt.Sprint("out", n)
				n++
				if _, err := checkoutAt(context.Background(), src, pfd, name, "", Options{As: tc.as, Workers: 2}, defaultLimits); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := tc.as.Do(func() error { return locks.RemoveAllAt(pfd, name) }); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// TestCheckoutAsOverhead alternates the two checkouts of
// BenchmarkCheckoutAs (writeback on these machines drifts too much for
// one-after-the-other runs to compare) and logs the medians. A
// measurement aid, skipped unless GITFS_AS_OVERHEAD=ROUNDS is set;
// GITFS_AS_OVERHEAD_DIR picks the file system (e.g. /dev/shm, to see the
// CPU cost without the disk's noise):
//
//	GITFS_AS_OVERHEAD=9 GITFS_AS_OVERHEAD_DIR=/dev/shm go test ./materialize -run TestCheckoutAsOverhead -v
func TestCheckoutAsOverhead(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("GITFS_AS_OVERHEAD"))
	if rounds <= 0 {
		t.Skip("set GITFS_AS_OVERHEAD=ROUNDS")
	}
	needRoot(t)
	src := benchTree()
	base := t.TempDir()
	if d := os.Getenv("GITFS_AS_OVERHEAD_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "gitfs-as-overhead-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
	}
	dir := filepath.Join(base, "parent")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	pfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pfd)
	users := []struct {
		name string
		as   *asuser.User
	}{{"daemon", nil}, {"as-root", &asuser.User{}}, {"as-65534", asNobody}}
	times := make([][]time.Duration, len(users))
	var ratios []float64
	for r := 0; r < rounds; r++ {
		for k, u := range users {
			name := fmt.Sprint("out-", u.name)
			start := time.Now()
			if _, err := checkoutAt(context.Background(), src, pfd, name, "", Options{As: u.as, Workers: 2}, defaultLimits); err != nil {
				t.Fatal(err)
			}
			times[k] = append(times[k], time.Since(start))
			if err := u.as.Do(func() error { return locks.RemoveAllAt(pfd, name) }); err != nil {
				t.Fatal(err)
			}
		}
		ratios = append(ratios, float64(times[2][r])/float64(times[0][r]))
	}
	for k, u := range users {
		t.Logf("%-9s median %v of %v", u.name, median(times[k]), times[k])
	}
	slices.Sort(ratios)
	t.Logf("as-65534/daemon: median of side-by-side ratios %.3f", ratios[len(ratios)/2])
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
