//go:build linux

package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gitfs "github.com/gitfs/gitfs/fs"
	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

// writeOne opens p for writing and writes one byte at its start: the
// error of whichever step refuses it (open(2) with per-open handles, the
// write in no-open mode, where the kernel opens files by itself).
func writeOne(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte("!"), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// requestCounter counts the requests a mount answers, by operation.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) observe(op string, _ time.Duration, _ syscall.Errno) {
	c.mu.Lock()
	c.n[op]++
	c.mu.Unlock()
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// mountCounted mounts a second FS over e's root (e's own is unmounted
// first: one FS per root) with every request counted.
func mountCounted(t *testing.T, e *env, openHandles bool) (*gitfs.FS, string, *requestCounter) {
	t.Helper()
	c := &requestCounter{n: map[string]int{}}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	f, err := gitfs.New(gitfs.Options{Root: e.root, Snapshots: e.store, Resolver: resolver{e.ms}, Log: e.log,
		Observe: c.observe, OpenHandles: openHandles})
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := f.Mount(mnt); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	e.fs = f
	return f, mnt, c
}

func readTree(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if _, err := os.ReadFile(p); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWarmReadRequests: once a tree was read, reading it again costs no
// OPEN, OPENDIR, FLUSH, RELEASE or READDIR in no-open mode, while with
// per-open handles every file costs an OPEN (the reason for the mode).
func TestWarmReadRequests(t *testing.T) {
	e := newEnv(t, gittest.Generate(300, 7))
	for _, tc := range []struct {
		name        string
		openHandles bool
		wantOpens   bool
	}{
		{"no-open", false, false},
		{"open-handles", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mnt, c := mountCounted(t, e, tc.openHandles)
			if _, err := e.fs.Create(context.Background(), "w-"+tc.name, wsSpec(e)); err != nil {
				t.Fatal(err)
			}
			ws := filepath.Join(mnt, "w-"+tc.name)
			if n := readTree(t, ws); n != 300 {
				t.Fatalf("read %d files, want 300", n)
			}
			c.take()
			readTree(t, ws)
			got := c.take()
			for _, op := range []string{"opendir", "flush", "readdir", "readdirplus"} {
				if got[op] != 0 && !tc.openHandles {
					t.Errorf("warm read: %d %s requests, want none (all: %v)", got[op], op, got)
				}
			}
			if opens := got["open"]; (opens >= 300) != tc.wantOpens {
				t.Errorf("warm read of 300 files: %d OPEN requests (all: %v)", opens, got)
			}
		})
	}
}

func wsSpec(e *env) workspace.Spec {
	return workspace.Spec{Repo: "demo", Rev: "main", Commit: e.commit}
}

// TestNoOpenWrites: without OPEN, what an open for writing did happens at
// the first request that changes the file: O_TRUNC truncates (a SETATTR,
// copying up nothing), a write copies the file up and changes only what
// it writes, and the change journal lists every file written.
func TestNoOpenWrites(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("w")
	tok, _, _, err := e.fs.Changes("w", "")
	if err != nil {
		t.Fatal(err)
	}
	// Opened for writing, not written: nothing is copied up.
	f, err := os.OpenFile(filepath.Join(ws, "src/a.go"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := e.fs.Status("w"); len(st) != 0 {
		t.Errorf("status after an open for writing: %v, want nothing", st)
	}
	if _, err := f.WriteAt([]byte("P"), 0); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(ws, "src/a.go")); got != "Package a\n" {
		t.Errorf("after a one-byte write: %q", got)
	}
	_, paths, full, err := e.fs.Changes("w", tok)
	if err != nil || full || !contains(paths, "src/a.go") {
		t.Errorf("changes after a write: %v full=%v %v, want src/a.go", paths, full, err)
	}
	// A later write through the same descriptor is listed after any token.
	tok, _, _, _ = e.fs.Changes("w", tok)
	if _, err := f.WriteAt([]byte("p"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, paths, _, _ := e.fs.Changes("w", tok); !contains(paths, "src/a.go") {
		t.Errorf("changes after a second write: %v, want src/a.go", paths)
	}
	// O_TRUNC of an unchanged file and of an upper one.
	for _, p := range []string{"README.md", "src/a.go"} {
		if err := os.WriteFile(filepath.Join(ws, p), []byte("new\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(ws, p)); got != "new\n" {
			t.Errorf("%s after O_TRUNC write: %q", p, got)
		}
	}
	// Truncation alone, through a shell redirection.
	if out, err := exec.Command("sh", "-c", ": > "+filepath.Join(ws, "data/big.bin")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(ws, "data/big.bin")); err != nil || fi.Size() != 0 {
		t.Errorf("truncated file: %v %v", fi, err)
	}
	st, _ := e.fs.Status("w")
	got := fmt.Sprint(st)
	for _, p := range []string{"README.md", "src/a.go", "data/big.bin"} {
		if !strings.Contains(got, p) {
			t.Errorf("status %s lacks %s", got, p)
		}
	}
	// A browse path refuses at the write.
	if err := writeOne(filepath.Join(e.mnt, "@demo/heads/main/README.md")); !errorsIs(err, syscall.EROFS) {
		t.Errorf("write in a browse path: %v, want EROFS", err)
	}
}

// TestChangesHardLinks: a change made through one name of a file with
// hard links changes every name; git's fsmonitor must hear of the others
// too (or scan everything), else git status in the workspace misses a
// modified tracked file that a clone's git status shows.
func TestChangesHardLinks(t *testing.T) {
	e := newEnv(t, sampleFiles())
	readFile(t, filepath.Join(e.create("first"), "README.md")) // no-open mode from here on
	changed := func(ws, tok string, names ...string) {
		t.Helper()
		_, paths, full, err := e.fs.Changes(ws, tok)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !full && !contains(paths, n) {
				t.Errorf("%s: changes %v lack %s", ws, paths, n)
			}
		}
	}
	appendTo := func(p string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("more\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	link := func(from, to string) {
		t.Helper()
		if err := os.Link(from, to); err != nil {
			t.Fatal(err)
		}
	}
	// A tracked file linked, then written through the new name.
	ws := e.create("write")
	link(filepath.Join(ws, "src/a.go"), filepath.Join(ws, "a-link"))
	tok, _, _, _ := e.fs.Changes("write", "")
	appendTo(filepath.Join(ws, "a-link"))
	changed("write", tok, "src/a.go", "a-link")
	// chmod through one name.
	ws = e.create("chmod")
	link(filepath.Join(ws, "src/a.go"), filepath.Join(ws, "a-link"))
	tok, _, _, _ = e.fs.Changes("chmod", "")
	if err := os.Chmod(filepath.Join(ws, "a-link"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed("chmod", tok, "src/a.go")
	// A new file, written (its writer kept), linked, written again.
	ws = e.create("new")
	if err := os.WriteFile(filepath.Join(ws, "new"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link(filepath.Join(ws, "new"), filepath.Join(ws, "src/new-link"))
	tok, _, _, _ = e.fs.Changes("new", "")
	appendTo(filepath.Join(ws, "src/new-link"))
	changed("new", tok, "new", "src/new-link")
	// Without links the answers name paths (no full scan for nothing).
	ws = e.create("plain")
	tok, _, _, _ = e.fs.Changes("plain", "")
	appendTo(filepath.Join(ws, "src/b.go"))
	if _, paths, full, _ := e.fs.Changes("plain", tok); full || !contains(paths, "src/b.go") {
		t.Errorf("plain: changes %v full %v, want src/b.go", paths, full)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func errorsIs(err error, errno syscall.Errno) bool {
	pe, ok := err.(*os.PathError)
	if ok {
		err = pe.Err
	}
	return err == errno
}

// TestNoOpendirListings: directories are listed without OPENDIR, however
// many READDIRs a listing takes; the mount's root, whose content moves
// without the kernel being told, is listed afresh every time.
func TestNoOpendirListings(t *testing.T) {
	var files []gittest.File
	for i := 0; i < 3000; i++ {
		files = append(files, gittest.File{Path: fmt.Sprintf("big/a-rather-long-file-name-%05d.txt", i), Content: []byte("x")})
	}
	files = append(files, gittest.File{Path: "small/one", Content: []byte("1")})
	e := newEnv(t, files)
	ws := e.create("w")
	for i := 0; i < 2; i++ {
		names, err := os.ReadDir(filepath.Join(ws, "big"))
		if err != nil || len(names) != 3000 {
			t.Fatalf("listing %d: %d names, %v", i, len(names), err)
		}
		if !sort.SliceIsSorted(names, func(a, b int) bool { return names[a].Name() < names[b].Name() }) {
			t.Errorf("listing %d out of order", i)
		}
	}
	// Many listings at once, of many directories.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if names, err := os.ReadDir(filepath.Join(ws, "big")); err != nil || len(names) != 3000 {
					t.Errorf("concurrent listing: %d names, %v", len(names), err)
				}
			}
		}()
	}
	wg.Wait()
	before, _ := os.ReadDir(e.mnt)
	e.create("w2")

	after, _ := os.ReadDir(e.mnt)
	if len(after) != len(before)+1 {
		t.Errorf("mount root lists %d entries after a create, %d before", len(after), len(before))
	}
	// A directory changed through the mount is listed anew.
	if err := os.WriteFile(filepath.Join(ws, "small/two"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(filepath.Join(ws, "small")); len(names) != 2 {
		t.Errorf("small/ after a create: %v", names)
	}
}

// TestKillSuidgid: a write by an unprivileged user clears the suid bit (and
// the sgid bit of a group-executable file), as the kernel does; with
// CAP_HANDLE_KILLPRIV_V2 that is the file system's job.
func TestKillSuidgid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write as another user")
	}
	e := newEnv(t, sampleFiles())
	ws := e.create("w")
	for _, tc := range []struct {
		mode, want os.FileMode
	}{
		{0o4777, 0o777},
		{0o6777, 0o777},
		{0o2767, 0o2767}, // sgid without group execution: mandatory locking, kept
		{0o777, 0o777},
	} {
		p := filepath.Join(ws, fmt.Sprintf("f%o", tc.mode))
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(p, uint32(tc.mode)); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", "printf y >> "+p).CombinedOutput()
		if err != nil {
			t.Fatalf("write as nobody: %v: %s", err, out)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		if got := os.FileMode(st.Mode & 0o7777); got != tc.want {
			t.Errorf("mode %o after a write by another user: %o, want %o", tc.mode, got, tc.want)
		}
		if got := readFile(t, p); got != "xy" {
			t.Errorf("content %q", got)
		}
	}
}

// TestSmallWritesAskNoXattr: small writes do not make the kernel ask for
// security.capability each time (CAP_HANDLE_KILLPRIV_V2).
func TestSmallWritesAskNoXattr(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("w")
	f, err := os.Create(filepath.Join(ws, "new.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := e.fs.Stats().Getxattrs
	buf := make([]byte, 4096)
	for i := 0; i < 200; i++ {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.fs.Stats().Getxattrs - before; n > 2 {
		t.Errorf("200 writes asked %d xattrs, want at most 2", n)
	}
}

// TestWriterAndReader: a file being written through its creating handle
// and read through another descriptor that the kernel opened by itself:
// the reader sees every write, and the file opens again once closed. (In
// no-open mode the creating handle must not pass through: the kernel then
// refuses, EIO, every open of the file it makes by itself, even after the
// creator closed it.)
func TestWriterAndReader(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("w")
	readFile(t, filepath.Join(ws, "README.md")) // the mount's first OPEN
	p := filepath.Join(ws, "log")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 64)
	for i, s := range []string{"first line\n", "second\n", "third and last\n"} {
		if _, err := w.WriteAt([]byte(s), 0); err != nil {
			t.Fatal(err)
		}
		n, _ := r.ReadAt(buf, 0)
		if got := string(buf[:min(n, len(s))]); got != s {
			t.Errorf("read %d through another descriptor: %q, want %q", i, got, s)
		}
	}
	w.Close()
	if got := readFile(t, p); got != "third and last\n" {
		t.Errorf("after close: %q", got)
	}
}

// TestPushSiblings: the first read of a file in a directory pushes the
// directory's other files into the page cache, so reading them asks the
// daemon nothing; a listing alone pushes nothing. In a workspace and in a
// browse path (whose files are shared: shared.go).
func TestPushSiblings(t *testing.T) {
	for _, where := range []string{"workspace", "browse path"} {
		t.Run(where, func(t *testing.T) { testPushSiblings(t, where == "browse path") })
	}
}

func testPushSiblings(t *testing.T, browse bool) {
	var files []gittest.File
	for i := 0; i < 40; i++ {
		files = append(files, gittest.File{Path: fmt.Sprintf("d/f%02d", i), Content: bytes.Repeat([]byte{byte('a' + i%26)}, 3000+i)})
	}
	files = append(files, gittest.File{Path: "listed/x", Content: []byte("x")})
	e := newEnv(t, files)
	ws := filepath.Join(e.mnt, "@demo/commits", e.commit)
	if !browse {
		ws = e.create("w")
	}
	if _, err := os.ReadDir(filepath.Join(ws, "listed")); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(filepath.Join(ws, "d"))
	if err != nil || len(names) != 40 {
		t.Fatalf("list: %v %v", names, err)
	}
	if e.fs.Stats().Pushed != 0 {
		t.Fatalf("listings pushed %d files", e.fs.Stats().Pushed)
	}
	readFile(t, filepath.Join(ws, "d/f00"))
	waitFor(t, "39 files pushed", func() bool { return e.fs.Stats().Pushed == 39 })
	before := e.fs.Stats().LowerReads
	for i, f := range files[:40] {
		if got := readFile(t, filepath.Join(ws, f.Path)); got != string(f.Content) {
			t.Fatalf("file %d reads %d bytes, want %d", i, len(got), len(f.Content))
		}
	}
	if n := e.fs.Stats().LowerReads - before; n != 0 {
		t.Errorf("reading pushed files asked the daemon %d times", n)
	}
}

// TestPushAfterUpdate: a directory whose files were read gets the files a
// ws update changed pushed as soon as the kernel has listed it again, so
// reading them asks the daemon nothing (no READ, and no GETATTR for the
// atime a READ moves); one never read from pushes nothing on a listing.
func TestPushAfterUpdate(t *testing.T) {
	var files []gittest.File
	for i := 0; i < 10; i++ {
		files = append(files, gittest.File{Path: fmt.Sprintf("d/f%02d", i), Content: bytes.Repeat([]byte{byte('a' + i)}, 2000+i)})
	}
	files = append(files, gittest.File{Path: "listed/x", Content: []byte("x")})
	e := newEnv(t, files)
	changed := map[string]string{"d/f03": "changed three\n", "listed/x": "changed x\n"}
	c2 := e.commitAndFetch(t, "second", edited(files, changed))
	ws := e.create("w")
	for _, f := range files[:10] {
		readFile(t, filepath.Join(ws, f.Path))
	}
	if _, err := os.ReadDir(filepath.Join(ws, "listed")); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Update(context.Background(), "w", workspace.Spec{Rev: "main", Commit: c2}, workspace.DiscardAll); err != nil {
		t.Fatal(err)
	}
	pushed := e.fs.Stats().Pushed
	if _, err := os.ReadDir(filepath.Join(ws, "listed")); err != nil { // never read from: no push
		t.Fatal(err)
	}
	if _, err := os.ReadDir(filepath.Join(ws, "d")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the changed file pushed", func() bool { return e.fs.Stats().Pushed > pushed })
	before := e.fs.Stats().LowerReads
	if got := readFile(t, filepath.Join(ws, "d/f03")); got != changed["d/f03"] {
		t.Errorf("the changed file reads %q", got)
	}
	if n := e.fs.Stats().LowerReads - before; n != 0 {
		t.Errorf("reading the changed file asked the daemon %d times", n)
	}
	if n := e.fs.Stats().Pushed - pushed; n != 1 {
		t.Errorf("%d files pushed, want the one changed in the directory read from", n)
	}
}
