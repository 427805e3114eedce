//go:build linux

package fs_test

import (
	"bufio"
	"bytes"
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
	"github.com/gitfs/gitfs/workspace"
)

// TestTmpfileLink: an O_TMPFILE file linked into place keeps its content.
func TestTmpfileLink(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("tmp")
	fd, err := unix.Open(filepath.Join(ws, "src"), unix.O_TMPFILE|unix.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("anonymous")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, filepath.Join(ws, "src/named"), unix.AT_SYMLINK_FOLLOW); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(ws, "src/named")); got != "anonymous" {
		t.Errorf("linked tmpfile reads %q", got)
	}
	st, err := e.fs.Status("tmp")
	if err != nil || len(st) != 1 || st[0].Path != "src/named" || st[0].Op != 'A' {
		t.Errorf("status: %v %v", st, err)
	}
}

// TestCreateLeavesNoDescriptor: in no-open mode the kernel sends no
// RELEASE for a file made by CREATE or O_TMPFILE once it has learned that
// OPEN is not implemented, so a handle those return would keep its upper
// file's descriptor for good; a daemon that has made 20000 files through
// the mount then answers EMFILE (git add: "Too many open files"). Once the
// files are gone (and the kernel forgot them), so are their descriptors.
func TestCreateLeavesNoDescriptor(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("fds")
	// An open teaches the kernel no-open mode (raw.go): CREATE comes after.
	readFile(t, filepath.Join(ws, "README.md"))
	before := upperFDs(t, e.root)
	for i := 0; i < 50; i++ {
		p := filepath.Join(ws, fmt.Sprintf("new%d", i))
		if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, p); got != "content" {
			t.Fatalf("%s reads %q", p, got)
		}
		fd, err := unix.Open(filepath.Join(ws, "src"), unix.O_TMPFILE|unix.O_RDWR, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, []byte("anonymous")); err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
	}
	if err := os.WriteFile(filepath.Join(ws, "appended"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(ws, "appended"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if got := readFile(t, filepath.Join(ws, "appended")); got != "one\ntwo\n" {
		t.Errorf("appended reads %q", got)
	}
	for i := 0; i < 50; i++ {
		if err := os.Remove(filepath.Join(ws, fmt.Sprintf("new%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(ws, "appended"))
	var n int
	for i := 0; i < 100; i++ {
		if n = upperFDs(t, e.root); n <= before {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("%d descriptors of upper files after 101 files made and gone, %d before", n, before)
}

// upperFDs counts this process's descriptors of files (not directories,
// which nodes may cache within a budget) in root's upper layers: the test
// mounts the FS in process.
func upperFDs(t *testing.T, root string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil || !strings.HasPrefix(l, root+"/") || !strings.Contains(l, "/upper/") {
			continue
		}
		if fi, err := os.Stat("/proc/self/fd/" + e.Name()); err == nil && fi.IsDir() {
			continue
		}
		n++
	}
	return n
}

// TestNoOpenWritersWithinBudget: in no-open mode a file written without a
// handle keeps a read-write descriptor until the kernel forgets it, and
// the kernel keeps what it caches: past the descriptor budget (a quarter
// of RLIMIT_NOFILE) writes go through a descriptor of their own, so that a
// workspace can take more new files than the daemon may hold open (a
// checkout, a build), and the journal still lists every one written.
func TestNoOpenWritersWithinBudget(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 2048 // a budget of 1024 kept descriptors (New)
	if low.Cur > old.Max {
		t.Skipf("RLIMIT_NOFILE hard limit %d", old.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	e := newEnv(t, sampleFiles())
	ws := e.create("many")
	readFile(t, filepath.Join(ws, "README.md")) // no-open mode from here on
	tok, _, _, err := e.fs.Changes("many", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(ws, fmt.Sprintf("f%04d", i)), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
	}
	tok2, _, _, _ := e.fs.Changes("many", tok)
	for _, i := range []int{0, n / 2, n - 1} {
		p := filepath.Join(ws, fmt.Sprintf("f%04d", i))
		if got := readFile(t, p); got != fmt.Sprint(i) {
			t.Errorf("%s reads %q", p, got)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("+"); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Errorf("fsync %s: %v", p, err)
		}
		f.Close()
		if got := readFile(t, p); got != fmt.Sprint(i)+"+" {
			t.Errorf("%s reads %q after an append", p, got)
		}
	}
	_, paths, full, err := e.fs.Changes("many", tok2)
	if err != nil || full {
		t.Fatalf("changes: full=%v %v", full, err)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if p := fmt.Sprintf("f%04d", i); !contains(paths, p) {
			t.Errorf("changes after appending to %s lack it (%d paths)", p, len(paths))
		}
	}
	if k := upperFDs(t, e.root); k > int(low.Cur)/2 {
		t.Errorf("%d descriptors of upper files kept, past the budget of %d", k, low.Cur/2)
	}
}

// TestUnlinkedWhileOpen: in no-open mode a process that opened a file
// reaches it only by inode, so once its last name is gone (unlink, a
// rename over it) the node must keep the file itself: fstat, reads and
// writes through the old descriptor see the old file, not whatever takes
// its name next, and a write to a removed lower file fails instead of
// copying it up where its name was.
func TestUnlinkedWhileOpen(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("unlinked")
	readFile(t, filepath.Join(ws, "README.md")) // teaches the kernel no-open mode
	cases := []struct {
		name   string
		remove func(p string) error
		read   bool // the node keeps only a read descriptor when its name goes
	}{
		{"unlink", os.Remove, false},
		{"unlink, read first", os.Remove, true},
		{"rename over", func(p string) error {
			if err := os.WriteFile(p+".new", []byte("replacement, longer\n"), 0o644); err != nil {
				return err
			}
			return os.Rename(p+".new", p)
		}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(ws, fmt.Sprintf("victim%d", i))
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			// The kernel forgets the CREATE: the old file is then known
			// to the daemon only through this open.
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if c.read {
				if !gitfs.DropInodeIO(e.fs, "unlinked", filepath.Base(p)) {
					t.Fatal("no node")
				}
				if _, err := f.ReadAt(make([]byte, 3), 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("a different file\n"), 0o644); err != nil && c.name != "rename over" {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(p)
			if _, err := f.WriteAt([]byte("OLD!"), 0); err != nil {
				t.Fatalf("write after %s: %v", c.name, err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			fi, err := f.Stat()
			if err != nil {
				t.Fatalf("fstat after %s: %v", c.name, err)
			}
			if fi.Size() != 4 {
				t.Errorf("fstat after %s: size %d, want 4", c.name, fi.Size())
			}
			if err := f.Truncate(5); err != nil {
				t.Errorf("ftruncate after %s: %v", c.name, err)
			} else if fi, err := f.Stat(); err != nil || fi.Size() != 5 {
				t.Errorf("fstat after ftruncate after %s: %v %v", c.name, fi, err)
			}
			if err := f.Truncate(4); err != nil {
				t.Errorf("ftruncate after %s: %v", c.name, err)
			}
			buf := make([]byte, 16)
			k, err := f.ReadAt(buf, 0)
			if string(buf[:k]) != "OLD!" {
				t.Errorf("read after %s: %q %v", c.name, buf[:k], err)
			}
			if got := readFile(t, p); got != string(want) {
				t.Errorf("the file now at the name reads %q, want %q", got, want)
			}
		})
	}
	t.Run("lower", func(t *testing.T) {
		p := filepath.Join(ws, "src", "a.go")
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Nlink != 0 {
			t.Errorf("fstat of a removed unchanged file: nlink %d (%v), want 0", st.Nlink, err)
		}
		buf := make([]byte, 64)
		if k, err := f.ReadAt(buf, 0); string(buf[:k]) != "package a\n" {
			t.Errorf("a removed unchanged file reads %q (%v)", buf[:k], err)
		}
		f.WriteAt([]byte("resurrected?"), 0) // may fail: the name is gone
		f.Sync()
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after a write to the removed file, its name shows again: %v", err)
		}
		if err := os.WriteFile(p, []byte("new\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("written to the old file"), 0)
		f.Sync()
		if got := readFile(t, p); got != "new\n" {
			t.Errorf("a write to the removed file went to the new one: %q", got)
		}
	})
}

// TestRemoveKeepsOpenFiles: ws rm while processes hold files of the
// workspace open. In no-open mode the kernel reaches them by inode only
// (no handle), so the daemon must keep what they read: the snapshot's
// bytes for an unchanged file, a descriptor for a written one, whose
// directory is deleted with the workspace.
func TestRemoveKeepsOpenFiles(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("gone")
	readFile(t, filepath.Join(ws, "README.md")) // teaches the kernel no-open mode
	if err := os.WriteFile(filepath.Join(ws, "mine"), []byte("my own bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine, err := os.OpenFile(filepath.Join(ws, "mine"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	big, err := os.Open(filepath.Join(ws, "data", "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if err := e.fs.Remove("gone"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*os.File{mine, big} {
		// Not from the page cache: the READs must reach the daemon.
		unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
	want := sampleFiles()[8].Content
	got := make([]byte, len(want))
	if k, err := big.ReadAt(got, 0); k != len(want) || !bytes.Equal(got, want) {
		t.Errorf("an unchanged file after ws rm: read %d bytes (%v), want its %d", k, err, len(want))
	}
	if fi, err := big.Stat(); err != nil || fi.Size() != int64(len(want)) {
		t.Errorf("fstat of an unchanged file after ws rm: %v %v", fi, err)
	}
	if _, err := mine.WriteAt([]byte("MY"), 0); err != nil {
		t.Errorf("write to a written file after ws rm: %v", err)
	}
	buf := make([]byte, 32)
	if k, err := mine.ReadAt(buf, 0); string(buf[:k]) != "MY own bytes" {
		t.Errorf("a written file after ws rm reads %q (%v)", buf[:k], err)
	}
	if fi, err := mine.Stat(); err != nil || fi.Size() != 12 {
		t.Errorf("fstat of a written file after ws rm: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(ws, "README.md")); !os.IsNotExist(err) {
		t.Errorf("a path of the removed workspace: %v", err)
	}
}

// TestRemovedFileShownAgain: a file removed while open is a node with no
// name (nlink 0, no writes through it); when ws update --reset brings the
// file back at its name, it is an inode of its own again, which works as
// any file's (the update refreshes the directory above it).
func TestRemovedFileShownAgain(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("again")
	p := filepath.Join(ws, "src", "a.go")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Update(context.Background(), "again", workspace.Spec{Commit: e.commit}, workspace.DiscardAll); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil || st.Nlink != 1 {
		t.Errorf("the file back at its name: nlink %d (%v), want 1", st.Nlink, err)
	}
	if err := os.WriteFile(p, []byte("package a // changed\n"), 0o644); err != nil {
		t.Errorf("write to the file back at its name: %v", err)
	}
	if got := readFile(t, p); got != "package a // changed\n" {
		t.Errorf("it reads %q", got)
	}
}

// TestDetachedWithinBudget: a user who holds open many files and unlinks
// them makes the daemon keep a descriptor of each (no-open mode), and one
// who holds many O_TMPFILE files too: both count against the fd budget (a
// quarter of RLIMIT_NOFILE), so that the daemon never runs out of
// descriptors for everyone else. Past it an unlinked file is held no more
// and an O_TMPFILE open fails with ENFILE, until descriptors come back.
func TestDetachedWithinBudget(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = 3072 // a budget of 1024 kept descriptors (New), room for this process's own
	if low.Cur > old.Max {
		t.Skipf("RLIMIT_NOFILE hard limit %d", old.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
	e := newEnv(t, sampleFiles())
	ws := e.create("held")
	readFile(t, filepath.Join(ws, "README.md")) // no-open mode from here on
	// Another process holds the files (this one serves the mount and has
	// the same limit): bash opens each, unlinks it, and waits.
	const n = 1100
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(ws, fmt.Sprintf("u%04d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	holder := exec.Command("bash", "-c", `cd "$1" && for f in u*; do exec {fd}<"$f"; rm "$f"; done; echo held; read -r _`, "bash", ws)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); holder.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "held\n" {
		t.Fatalf("the holder said %q (%v)", line, err)
	}
	if got := upperFDs(t, e.root); got > 1024 {
		t.Errorf("the daemon keeps %d descriptors of files unlinked while open, past its budget of 1024", got)
	}
	fd, err := unix.Open(filepath.Join(ws, "src"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err == nil {
		unix.Close(fd)
		t.Errorf("an O_TMPFILE open past the fd budget succeeded")
	} else if err != unix.ENFILE {
		t.Errorf("an O_TMPFILE open past the fd budget: %v, want ENFILE", err)
	}
	stdin.Close() // the holder exits, closing the files
	holder.Wait()
	waitFor(t, "descriptors back once the files are closed", func() bool { return upperFDs(t, e.root) < 100 })
	fd, err = unix.Open(filepath.Join(ws, "src"), unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("an O_TMPFILE open within the budget again: %v", err)
	}
	unix.Close(fd)
}
