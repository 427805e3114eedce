//go:build linux

package fs_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

// hashTree hashes every file under dir (path, mode, content): the snapshot
// store must be byte-identical after any workspace operation.
func hashTree(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %o\n", rel, info.Mode())
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			io.Copy(h, f)
			f.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// extract writes git archive of rev into a new directory (a native
// checkout to replay operations on).
func extract(t *testing.T, repoDir, rev string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("git", "archive", "--format=tar", rev)
	cmd.Dir = repoDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
			os.Chmod(p, 0o755)
		case tar.TypeSymlink:
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.Symlink(h.Linkname, p); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(p), 0o755)
			b, _ := io.ReadAll(tr)
			mode := os.FileMode(0o644) // as git checks out, whatever git archive's umask
			if h.Mode&0o100 != 0 {
				mode = 0o755
			}
			if err := os.WriteFile(p, b, mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, mode)
		}
	}
	return dir
}

// fullTree describes every path under dir: type, content hash, permission
// bits and owner.
func fullTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		perm := st.Mode & 0o7777
		what := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			what, perm = "symlink "+target, 0
		case unix.S_IFDIR:
			what = "dir"
		case unix.S_IFIFO:
			what = "fifo"
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			what = "file " + hex.EncodeToString(sum[:8])
		default:
			what = fmt.Sprintf("type %o", st.Mode&unix.S_IFMT)
		}
		out[filepath.ToSlash(rel)] = fmt.Sprintf("%s %o %d:%d", what, perm, st.Uid, st.Gid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffMaps(want, got map[string]string) []string {
	var out []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			out = append(out, "missing "+p)
		} else if g != w {
			out = append(out, fmt.Sprintf("%s: want %s, got %s", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, "extra "+p)
		}
	}
	sort.Strings(out)
	return out
}

type op struct {
	name string
	do   func(root string) error
}

func must(errs ...error) error { return errors.Join(errs...) }

func writeAt(p string, off int64, data string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(data), off)
	return must(err, f.Close())
}

func appendTo(p, data string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	return must(err, f.Close())
}

func mmapWrite(p string, off int, data string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	st, _ := f.Stat()
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	copy(m[off:], data)
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		return err
	}
	return unix.Munmap(m)
}

// cowOps exercise every operation on lower files, lower directories and
// upper files. Each runs on a native checkout and on a workspace.
var cowOps = []op{
	{"write lower file", func(r string) error { return writeAt(r+"/README.md", 0, "HELLO") }},
	{"append lower file", func(r string) error { return appendTo(r+"/src/a.go", "// more\n") }},
	{"truncate lower file", func(r string) error { return os.Truncate(r+"/src/b.go", 3) }},
	{"O_TRUNC lower file", func(r string) error { return os.WriteFile(r+"/src/deep/other.txt", []byte("new"), 0o644) }},
	{"mmap write lower file", func(r string) error { return mmapWrite(r+"/data/big.bin", 4096*3+5, "MMAP") }},
	{"chmod lower file", func(r string) error { return os.Chmod(r+"/bin/run.sh", 0o700) }},
	{"chown lower file", func(r string) error { return os.Lchown(r+"/empty", 1234, 5678) }},
	{"utimens lower file", func(r string) error {
		return os.Chtimes(r+"/src/deep/x/y/z.txt", time.Unix(1e9, 0), time.Unix(1e9, 0))
	}},
	{"setxattr lower file", func(r string) error { return unix.Setxattr(r+"/link", "user.k", []byte("v"), 0) }},
	{"unlink lower file", func(r string) error { return os.Remove(r + "/empty") }},
	{"recreate unlinked lower file", func(r string) error { return os.WriteFile(r+"/empty", []byte("back"), 0o640) }},
	{"rename lower file across dirs over existing", func(r string) error { return os.Rename(r+"/src/a.go", r+"/bin/run.sh") }},
	{"hard link lower file", func(r string) error { return os.Link(r+"/src/b.go", r+"/b-link.go") }},
	{"write through hard link", func(r string) error { return appendTo(r+"/b-link.go", "linked\n") }},
	{"symlink", func(r string) error { return os.Symlink("../README.md", r+"/src/readme") }},
	{"mkfifo", func(r string) error { return unix.Mkfifo(r+"/src/fifo", 0o600) }},
	{"mkdir in lower dir", func(r string) error { return os.Mkdir(r+"/src/deep/new", 0o750) }},
	{"create in new dir", func(r string) error { return os.WriteFile(r+"/src/deep/new/f", []byte("f"), 0o600) }},
	{"rename lower dir across dirs", func(r string) error { return os.Rename(r+"/src/deep/x", r+"/data/moved") }},
	{"write in renamed lower dir", func(r string) error { return appendTo(r+"/data/moved/y/z.txt", "more") }},
	{"rename renamed dir again", func(r string) error { return os.Rename(r+"/data/moved", r+"/moved2") }},
	{"chmod lower dir", func(r string) error { return os.Chmod(r+"/data", 0o711) }},
	{"rmdir emptied lower dir", func(r string) error {
		return must(os.Remove(r+"/moved2/y/z.txt"), os.Remove(r+"/moved2/y"))
	}},
	{"remove and recreate lower dir (opaque)", func(r string) error {
		return must(os.RemoveAll(r+"/src"), os.Mkdir(r+"/src", 0o755), os.WriteFile(r+"/src/only", []byte("o"), 0o644))
	}},
	{"upper file write, rename, link, unlink", func(r string) error {
		return must(os.WriteFile(r+"/u1", []byte("u1"), 0o644), appendTo(r+"/u1", "+"),
			os.Rename(r+"/u1", r+"/u2"), os.Link(r+"/u2", r+"/u3"), os.Remove(r+"/u2"))
	}},
	{"rename upper dir over empty lower-derived dir", func(r string) error {
		return must(os.Mkdir(r+"/newdir", 0o755), os.WriteFile(r+"/newdir/x", nil, 0o644), os.Mkdir(r+"/moved2/empty", 0o755),
			os.Rename(r+"/newdir", r+"/moved2/empty"))
	}},
	{"rename dir over non-empty dir fails", func(r string) error {
		err := os.Rename(r+"/moved2", r+"/data")
		if !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("rename over non-empty dir: %v", err)
		}
		return nil
	}},
	{"O_EXCL on existing lower file fails", func(r string) error {
		_, err := os.OpenFile(r+"/README.md", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("O_EXCL: %v", err)
		}
		return nil
	}},
	{"large offset write", func(r string) error { return writeAt(r+"/dirlink/../sparse-not-in-src", 0, "") }},
}

func TestCopyOnWrite(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("cow")
	other := e.create("other")
	native := extract(t, e.repo.Dir, e.commit)
	snapDir := filepath.Join(e.root, "snapshots", e.commit)
	before := hashTree(t, snapDir)
	want := gittest.Archive(t, e.repo.Dir, e.commit)
	// Inode numbers survive copy-up and renames.
	inoOf := func(p string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	inoReadme := inoOf(ws + "/README.md")
	inoDeepY := inoOf(ws + "/src/deep/x/y")
	// a file opened before copy-up sees writes made after it
	early, err := os.Open(ws + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	for _, o := range cowOps {
		if o.name == "large offset write" {
			continue
		}
		nerr := o.do(native)
		werr := o.do(ws)
		if (nerr == nil) != (werr == nil) {
			t.Fatalf("%s: native: %v, workspace: %v", o.name, nerr, werr)
		}
		if d := diffMaps(fullTree(t, native), fullTree(t, ws)); len(d) > 0 {
			t.Fatalf("after %q the workspace differs from a native tree: %v", o.name, d)
		}
		if d := gittest.Diff(want, gittest.ReadDir(t, other), 5); len(d) > 0 {
			t.Fatalf("after %q the second workspace changed: %v", o.name, d)
		}
	}
	buf := make([]byte, 5)
	if _, err := early.ReadAt(buf, 0); err != nil || string(buf) != "HELLO" {
		t.Errorf("handle opened before copy-up reads %q, %v", buf, err)
	}
	if got := inoOf(ws + "/README.md"); got != inoReadme {
		t.Errorf("copy-up changed the inode number: %d -> %d", inoReadme, got)
	}
	_ = inoDeepY
	// Large offsets.
	f, err := os.OpenFile(ws+"/sparse", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(5 << 30)
	if _, err := f.WriteAt([]byte("far"), off); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	if _, err := f.ReadAt(b, off); err != nil || string(b) != "far" {
		t.Errorf("read at 5 GiB: %q %v", b, err)
	}
	if st, _ := f.Stat(); st.Size() != off+3 {
		t.Errorf("size %d", st.Size())
	}
	f.Close()
	os.Remove(ws + "/sparse")
	if after := hashTree(t, snapDir); after != before {
		t.Errorf("snapshot files changed")
	}
	if d := gittest.Diff(want, gittest.ReadDir(t, filepath.Join(e.mnt, "@demo/commits", e.commit)), 5); len(d) > 0 {
		t.Errorf("browse path changed: %v", d)
	}
	// Status lists the changes.
	st, err := e.fs.Status("cow")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range st {
		got[c.Path] = string(c.Op) + c.From
	}
	for p, w := range map[string]string{
		"README.md": "M", "src": "", "empty": "M", "bin/run.sh": "Rsrc/a.go", "u3": "A", "src/only": "A",
		"src/deep/other.txt": "D", "moved2": "Rsrc/deep/x", "data/big.bin": "M", "src/fifo": "",
	} {
		if got[p] != w {
			t.Errorf("status %s: %q, want %q (all: %v)", p, got[p], w, st)
		}
	}
	if l := e.fs.List(); len(l) != 2 || l[0].Name != "cow" {
		t.Errorf("list: %+v", l)
	} else if other, err := e.fs.Status(l[1].Name); err != nil || len(other) != 0 {
		t.Errorf("status of %s: %v, %v; want no changes", l[1].Name, other, err)
	}
	// Export: the commit materialized plus the export plan equals the workspace.
	exp := extract(t, e.repo.Dir, e.commit)
	r, err := os.OpenRoot(exp)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plan, err := e.fs.PlanExport("cow")
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if plan.Commit != e.commit {
		t.Errorf("plan of commit %s, want %s", plan.Commit, e.commit)
	}
	if err := plan.Apply(r); err != nil {
		t.Fatal(err)
	}
	if d := diffMaps(fullTree(t, ws), fullTree(t, exp)); len(d) > 0 {
		t.Errorf("export differs from the workspace: %v", d)
	}
	_ = workspace.Change{}
	_ = strings.TrimSpace
}
