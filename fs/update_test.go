//go:build linux

package fs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

func TestUpdate(t *testing.T) {
	files := sampleFiles()
	e := newEnv(t, files)
	files2 := edited(files, map[string]string{"README.md": "hello gitfs, version two\n", "src/deep/other.txt": "other v2\n"}, "src/a.go")
	files2 = append(files2, gittest.File{Path: "src/added.go", Content: []byte("package added\n")})
	c2 := e.commitAndFetch(t, "second", files2)
	ws := e.create("up")
	old, err := os.Open(filepath.Join(ws, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// Handles of a changed file deeper down and of a removed one, opened
	// and not read before the update: their first READs come after it.
	oldDeep, err := os.Open(filepath.Join(ws, "src/deep/other.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer oldDeep.Close()
	oldGone, err := os.Open(filepath.Join(ws, "src/a.go"))
	if err != nil {
		t.Fatal(err)
	}
	defer oldGone.Close()
	if _, err := os.Stat(filepath.Join(ws, "src/added.go")); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	aIno := inode(t, filepath.Join(ws, "src/b.go"))
	if err := os.WriteFile(filepath.Join(ws, "bin/run.sh"), []byte("local\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Update(context.Background(), "up", workspace.Spec{Rev: "main", Commit: c2}, workspace.KeepChanges); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := old.ReadAt(buf, 0)
	if string(buf[:n]) != "hello gitfs\n" {
		t.Errorf("old handle reads %q after update", buf[:n])
	}
	for f, want := range map[*os.File]string{oldDeep: "other\n", oldGone: "package a\n"} {
		if n, _ := f.ReadAt(buf, 0); string(buf[:n]) != want {
			t.Errorf("old handle of %s reads %q after update, want %q", f.Name(), buf[:n], want)
		}
	}
	if got := readFile(t, filepath.Join(ws, "README.md")); got != "hello gitfs, version two\n" {
		t.Errorf("new open reads %q", got)
	}
	if got := readFile(t, filepath.Join(ws, "src/added.go")); got != "package added\n" {
		t.Errorf("added file: %q", got)
	}
	if _, err := os.Stat(filepath.Join(ws, "src/a.go")); !os.IsNotExist(err) {
		t.Errorf("removed file still there: %v", err)
	}
	if got := readFile(t, filepath.Join(ws, "bin/run.sh")); got != "local\n" {
		t.Errorf("local change lost: %q", got)
	}
	if got := inode(t, filepath.Join(ws, "src/b.go")); got != aIno {
		t.Errorf("inode of unchanged file changed across update")
	}
	if l := e.fs.List(); l[0].Commit != c2 {
		t.Errorf("list after update: %+v", l)
	}
	// A local change on a path that changed upstream: refused, nothing changed.
	ws2 := e.create("conflict")
	if err := os.WriteFile(filepath.Join(ws2, "src/deep/other.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws2, "src/a.go")); err != nil {
		t.Fatal(err)
	}
	err = e.fs.Update(context.Background(), "conflict", workspace.Spec{Commit: c2}, workspace.KeepChanges)
	var ce *workspace.ConflictError
	if !errors.As(err, &ce) || strings.Join(ce.Paths, ",") != "src/a.go,src/deep/other.txt" {
		t.Fatalf("conflicting update: %v", err)
	}
	if got := readFile(t, filepath.Join(ws2, "src/deep/other.txt")); got != "mine\n" {
		t.Errorf("refused update changed the file: %q", got)
	}
	if got := readFile(t, filepath.Join(ws2, "README.md")); got != "hello gitfs\n" {
		t.Errorf("refused update switched commit: %q", got)
	}
	if err := e.fs.Update(context.Background(), "conflict", workspace.Spec{Commit: c2}, workspace.DiscardConflicting); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(ws2, "src/deep/other.txt")); got != "other v2\n" {
		t.Errorf("after discarding: %q", got)
	}
	want := gittest.Archive(t, e.repo.Dir, c2)
	if d := gittest.Diff(want, gittest.ReadDir(t, ws2), 10); len(d) > 0 {
		t.Errorf("after update with discard, differs from archive: %v", d)
	}
	// A moved branch shows the new commit on the next lookup.
	if got := readFile(t, filepath.Join(e.mnt, "@demo/heads/main/README.md")); got != "hello gitfs, version two\n" {
		t.Errorf("browse main after fetch: %q", got)
	}
}

// TestUpdatePinsFileUnderLowerDir: in a directory the workspace never
// changed (the pin walk compares its two trees instead of visiting every
// child), a file opened before ws update and read after it reads its old
// bytes as the old commit converted them, though the same update also
// changed the rule that converts it: the inode keeps the old blob and the
// old snapshot's conversion, not the old blob under the new rules.
func TestUpdatePinsFileUnderLowerDir(t *testing.T) {
	var files []gittest.File
	for i := range 20 {
		files = append(files, gittest.File{Path: fmt.Sprintf("sub/same%02d.txt", i), Content: []byte("same\n")})
	}
	files = append(files,
		gittest.File{Path: "sub/.gitattributes", Content: []byte("*.txt text eol=crlf\n")},
		gittest.File{Path: "sub/f.txt", Content: []byte("one\ntwo\n")},
		gittest.File{Path: "sub/gone.txt", Content: []byte("gone\n")},
		gittest.File{Path: "top.txt", Content: []byte("top\n")},
		gittest.File{Path: "other/kept.txt", Content: []byte("kept\n")})
	e := newEnv(t, files)
	// No conversion in the new commit.
	files2 := edited(files, map[string]string{"sub/f.txt": "changed\n"}, "sub/.gitattributes", "sub/gone.txt")
	files2 = append(files2, gittest.File{Path: "other/new.txt", Content: []byte("new\n")})
	c2 := e.commitAndFetch(t, "second", files2)
	ws := e.create("pin")
	// Listings the kernel caches: other/ gains a name no lookup had asked
	// for (no entry of it to drop), sub/ loses one.
	listing := func(dir string) string {
		des, err := os.ReadDir(filepath.Join(ws, dir))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		return strings.Join(names, " ")
	}
	listing("other")
	listing("sub")
	if got := readFile(t, filepath.Join(ws, "sub/same00.txt")); got != "same\r\n" {
		t.Fatalf("converted file reads %q before the update, want CRLF", got)
	}
	handles := map[string]*os.File{}
	for _, p := range []string{"sub/f.txt", "sub/gone.txt"} {
		f, err := os.Open(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		handles[p] = f
	}
	if err := e.fs.Update(context.Background(), "pin", workspace.Spec{Rev: "main", Commit: c2}, workspace.KeepChanges); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"sub/f.txt": "one\r\ntwo\r\n", "sub/gone.txt": "gone\r\n"} {
		b, err := io.ReadAll(handles[p])
		if err != nil || string(b) != want {
			t.Errorf("handle of %s opened before the update reads %q, %v; want %q", p, b, err, want)
		}
	}
	if got := readFile(t, filepath.Join(ws, "sub/f.txt")); got != "changed\n" {
		t.Errorf("new open of sub/f.txt reads %q", got)
	}
	if got := readFile(t, filepath.Join(ws, "sub/same00.txt")); got != "same\n" {
		t.Errorf("unchanged file under the rule removed reads %q, want it unconverted", got)
	}
	if got := listing("other"); got != "kept.txt new.txt" {
		t.Errorf("other/ lists %q after the update, want kept.txt new.txt", got)
	}
	if got := listing("sub"); strings.Contains(got, "gone.txt") || !strings.Contains(got, "f.txt") {
		t.Errorf("sub/ lists %q after the update, want f.txt and no gone.txt", got)
	}
}

// TestUpdateConvertsAgain: when ws update changes a .gitattributes rule,
// files below it whose blobs did not change (so their inodes stay) show
// the new commit's conversion at once, bytes and size, also where the
// kernel had cached the old ones; a file above the rule's directory keeps
// its cache.
func TestUpdateConvertsAgain(t *testing.T) {
	files := []gittest.File{
		{Path: "sub/.gitattributes", Content: []byte("*.txt text eol=crlf\n")},
		{Path: "sub/a.txt", Content: []byte("a\nb\n")},
		{Path: "sub/deep/c.txt", Content: []byte("c\n")},
		{Path: "top.txt", Content: []byte("top\n")},
	}
	e := newEnv(t, files)
	c2 := e.commitAndFetch(t, "second", files[1:]) // the rule goes
	ws := e.create("conv")
	for p, want := range map[string]string{"sub/a.txt": "a\r\nb\r\n", "sub/deep/c.txt": "c\r\n", "top.txt": "top\n"} {
		for range 2 { // cached: pages and attributes
			if got := readFile(t, filepath.Join(ws, p)); got != want {
				t.Fatalf("%s reads %q before the update, want %q", p, got, want)
			}
			if fi, err := os.Stat(filepath.Join(ws, p)); err != nil || fi.Size() != int64(len(want)) {
				t.Fatalf("%s: %v, %v before the update, want size %d", p, fi, err, len(want))
			}
		}
	}
	topIno := inode(t, filepath.Join(ws, "top.txt"))
	if err := e.fs.Update(context.Background(), "conv", workspace.Spec{Rev: "main", Commit: c2}, workspace.KeepChanges); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"sub/a.txt": "a\nb\n", "sub/deep/c.txt": "c\n", "top.txt": "top\n"} {
		fi, err := os.Stat(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(ws, p)); got != want || fi.Size() != int64(len(want)) {
			t.Errorf("%s reads %q (size %d) after the update, want %q", p, got, fi.Size(), want)
		}
	}
	if inode(t, filepath.Join(ws, "top.txt")) != topIno {
		t.Error("top.txt changed inode")
	}
}

// TestUpdateResetNewInode: a file whose local change ws update --reset
// discards shows its lower file under a new inode number (the upper copy
// had kept the lower file's), as a checkout writes a new file: a process
// holding the changed file open across the reset (a build server of the
// previous job) keeps the kernel's inode and its pages, and a new open
// must not get them, whatever size and times say.
func TestUpdateResetNewInode(t *testing.T) {
	files := []gittest.File{{Path: "dir/kept.txt", Content: []byte("lower\n")}, {Path: "other.txt", Content: []byte("1\n")}}
	e := newEnv(t, files)
	c2 := e.commitAndFetch(t, "second", []gittest.File{files[0], {Path: "other.txt", Content: []byte("2\n")}})
	ws := e.create("reset")
	p := filepath.Join(ws, "dir/kept.txt")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	ino := inode(t, p)
	if err := os.WriteFile(p, []byte("upper\n"), 0o644); err != nil { // same size
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := readFile(t, p); got != "upper\n" {
			t.Fatalf("local change reads %q", got)
		}
	}
	// An open descriptor keeps the kernel's inode, and its pages, alive
	// across the update: the next lookup finds it again by its number.
	held := e.resetHolding(t, "reset", c2, p)
	if got := readFile(t, p); got != "lower\n" {
		t.Errorf("after the reset the discarded change reads %q, want the lower file", got)
	}
	if got := inode(t, p); got == ino {
		t.Errorf("after the reset the file keeps inode %d", ino)
	}
	if got, err := readStart(held); got != "upper\n" {
		t.Errorf("the descriptor held across the reset reads %q, %v; want the change it had open", got, err)
	}
}

// resetHolding opens path p of workspace ws and, holding it open (until
// the test ends), moves ws to commit with ws update --reset.
func (e *env) resetHolding(t *testing.T, ws, commit, p string) *os.File {
	t.Helper()
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	if err := e.fs.Update(context.Background(), ws, workspace.Spec{Rev: "main", Commit: commit}, workspace.DiscardAll); err != nil {
		t.Fatal(err)
	}
	return held
}

// readStart reads the first bytes of f (up to 64) through the descriptor.
func readStart(f *os.File) (string, error) {
	b := make([]byte, 64)
	n, err := f.ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return string(b[:n]), err
}

// TestUpdateResetHeldUnread: a descriptor opened on a local change that
// the daemon keeps no descriptor of (a chmod copied it up; nothing read or
// wrote it since) and first read after ws update --reset discarded the
// change still reads what it opened: the READ reaches the daemon by inode,
// after the upper file is gone from its path.
func TestUpdateResetHeldUnread(t *testing.T) {
	files := []gittest.File{{Path: "dir/mode.txt", Content: []byte("lower\n")}, {Path: "other.txt", Content: []byte("1\n")}}
	e := newEnv(t, files)
	c2 := e.commitAndFetch(t, "second", []gittest.File{files[0], {Path: "other.txt", Content: []byte("2\n")}})
	ws := e.create("reset")
	p := filepath.Join(ws, "dir/mode.txt")
	if err := os.Chmod(p, 0o600); err != nil { // copied up, no data written
		t.Fatal(err)
	}
	held := e.resetHolding(t, "reset", c2, p)
	if got, err := readStart(held); got != "lower\n" {
		t.Errorf("the descriptor held across the reset reads %q, %v; want what it opened", got, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("after the reset: %v %v, want the lower file's mode", fi, err)
	}
}

// edited is files with the contents in set replaced and the paths in drop
// removed.
func edited(files []gittest.File, set map[string]string, drop ...string) []gittest.File {
	var out []gittest.File
	for _, f := range files {
		if slices.Contains(drop, f.Path) {
			continue
		}
		if c, ok := set[f.Path]; ok {
			f.Content = []byte(c)
		}
		out = append(out, f)
	}
	return out
}

// TestResetKeepsDirectoriesWritable: ws update --reset (the CI slot)
// discards every local change, also in directories the two commits do not
// differ in; writes there afterwards must land in the new upper layer, not
// in the discarded directory the nodes knew (they failed with ENOENT).
func TestResetKeepsDirectoriesWritable(t *testing.T) {
	files := sampleFiles()
	e := newEnv(t, files)
	next := e.commitAndFetch(t, "next", edited(files, map[string]string{"README.md": "next\n"}))
	for _, c := range []struct{ name, commit string }{{"same commit", e.commit}, {"next commit", next}} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			ws := e.create(name)
			p := func(s string) string { return filepath.Join(ws, s) }
			// Local changes in src/ and src/deep/, which neither commit changes.
			for path, content := range map[string]string{"src/a.go": "changed\n", "src/deep/new.txt": "new\n"} {
				if err := os.WriteFile(p(path), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Mkdir(p("src/made"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := e.fs.Update(context.Background(), name, workspace.Spec{Commit: c.commit}, workspace.DiscardAll); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p("src/a.go")); got != "package a\n" {
				t.Errorf("src/a.go after the reset: %q", got)
			}
			for path, content := range map[string]string{"src/new.go": "new\n", "src/b.go": "b changed\n", "src/deep/other.txt": "other changed\n"} {
				if err := os.WriteFile(p(path), []byte(content), 0o644); err != nil {
					t.Errorf("write %s after the reset: %v", path, err)
				} else if got := readFile(t, p(path)); got != content {
					t.Errorf("%s reads %q, want %q", path, got, content)
				}
			}
			if err := os.Mkdir(p("src/made"), 0o755); err != nil {
				t.Errorf("mkdir src/made again after the reset: %v", err)
			}
			st, err := e.fs.Status(name)
			if err != nil || len(st) != 3 { // an empty directory is no change to git
				t.Errorf("status after the reset and 3 changes: %v %v", st, err)
			}
		})
	}
}
