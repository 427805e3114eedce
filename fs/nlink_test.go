//go:build linux

package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// Directory link counts as ext4 keeps them: 2 plus one per subdirectory,
// in the merged view, after pjdfstest's rename/24 ("rename of a directory
// updates its .. link") and mkdir/rmdir's counts.

func nlink(t *testing.T, p string) uint64 {
	t.Helper()
	return uint64(lstatT(t, p).Nlink)
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	return lstatT(t, p).Ino
}

func nlinkFiles() []gittest.File {
	return []gittest.File{
		{Path: "a/x/f", Content: []byte("f")},
		{Path: "a/y/g", Content: []byte("g")},
		{Path: "a/z.txt", Content: []byte("z")},
		{Path: "a/sub", Content: []byte(strings.Repeat("1", 40)), Mode: "160000"}, // a gitlink: an empty directory
		{Path: "b/k", Content: []byte("k")},
		{Path: "top.txt", Content: []byte("t")},
	}
}

// TestRenameUpdatesDotDot is rename/24 in a fresh directory and with
// lower directories.
func TestRenameUpdatesDotDot(t *testing.T) {
	e := newEnv(t, nlinkFiles())
	ws := e.create("nl")
	for _, tc := range []struct {
		name, srcParent, dstParent string
		mkdirs                     bool
	}{
		{"fresh", "sp", "dp", true},
		{"lower", "a", "b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, dp := filepath.Join(ws, tc.srcParent), filepath.Join(ws, tc.dstParent)
			src := filepath.Join(sp, "src")
			if tc.mkdirs {
				for _, d := range []string{sp, dp, src} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			} else if err := os.Mkdir(src, 0o755); err != nil {
				t.Fatal(err)
			}
			spBefore, dpBefore := nlink(t, sp), nlink(t, dp)
			if tc.mkdirs && (spBefore != 3 || dpBefore != 2) {
				t.Errorf("before: %s nlink %d, %s nlink %d; want 3, 2", tc.srcParent, spBefore, tc.dstParent, dpBefore)
			}
			if ino(t, src+"/..") != ino(t, sp) {
				t.Error("src/.. is not its parent")
			}
			dst := filepath.Join(dp, "dst")
			if err := os.Rename(src, dst); err != nil {
				t.Fatal(err)
			}
			if got := nlink(t, sp); got != spBefore-1 {
				t.Errorf("after rename: source parent nlink %d, want %d", got, spBefore-1)
			}
			if got := nlink(t, dp); got != dpBefore+1 {
				t.Errorf("after rename: destination parent nlink %d, want %d", got, dpBefore+1)
			}
			if ino(t, dst+"/..") != ino(t, dp) {
				t.Error("dst/.. is not its new parent")
			}
			if err := os.Remove(dst); err != nil {
				t.Fatal(err)
			}
			if got := nlink(t, dp); got != dpBefore {
				t.Errorf("after rmdir: destination parent nlink %d, want %d", got, dpBefore)
			}
		})
	}
}

// TestDirectoryLinkCounts: lower, merged and browse directories count
// their subdirectories, gitlinks included; a whiteout uncounts one, a
// file replacing one too, a directory merged over one counts once.
func TestDirectoryLinkCounts(t *testing.T) {
	e := newEnv(t, nlinkFiles())
	ws := e.create("nl")
	a := filepath.Join(ws, "a")
	want := func(p string, n uint64) {
		t.Helper()
		if got := nlink(t, p); got != n {
			t.Errorf("%s: nlink %d, want %d", strings.TrimPrefix(p, ws), got, n)
		}
	}
	want(ws, 4) // the workspace root: a, b
	want(a, 5)  // x, y, sub
	want(filepath.Join(a, "x"), 2)
	want(filepath.Join(a, "sub"), 2)
	want(filepath.Join(e.mnt, "@demo", "HEAD", "a"), 5) // a browse path: lower only

	if err := os.WriteFile(filepath.Join(a, "x", "new"), nil, 0o644); err != nil { // copies a/x up, a merged
		t.Fatal(err)
	}
	want(a, 5) // a/x counted once: merged over its lower self
	if err := os.RemoveAll(filepath.Join(a, "y")); err != nil {
		t.Fatal(err)
	}
	want(a, 4) // a whiteout hides y
	if err := os.Mkdir(filepath.Join(a, "y"), 0o755); err != nil {
		t.Fatal(err)
	}
	want(a, 5) // a new y, over the whiteout
	if err := os.Remove(filepath.Join(a, "y")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, "y"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want(a, 4) // a file where y was
	if err := os.Chmod(a, 0o750); err != nil {
		t.Fatal(err)
	}
	want(a, 4) // setattr answers the count too
	if err := os.Rename(filepath.Join(a, "x"), filepath.Join(ws, "x2")); err != nil {
		t.Fatal(err)
	}
	want(a, 3)
	want(ws, 5) // a, b, x2
	want(filepath.Join(ws, "x2"), 2)
	if err := os.Mkdir(filepath.Join(ws, "x2", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	want(filepath.Join(ws, "x2"), 3)

	// A fresh lookup (after remount) counts the same.
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	e.mount()
	ws = filepath.Join(e.mnt, "nl")
	a = filepath.Join(ws, "a")
	want(a, 3)
	want(ws, 5)
	want(filepath.Join(ws, "x2"), 3)
}
