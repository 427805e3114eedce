//go:build linux

package fs_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
)

// Device nodes, after pjdfstest's mknod/11 ("mknod creates device files"),
// mknod/00's modes and ownership, and the device types of rename/23 and
// link/00, run in a fresh directory and in a lower one. Only a caller with
// CAP_MKNOD may make them (the kernel checks it before the daemon sees
// the request); char 0/0 stays the upper layer's whiteout record.

func requireRootForDevices(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("making device nodes needs CAP_MKNOD")
	}
}

func lstatT(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func TestMknodDevices(t *testing.T) {
	requireRootForDevices(t)
	e := newEnv(t, append(sampleFiles(), gittest.File{Path: "low/keep.txt", Content: []byte("k")}))
	ws := e.create("dev")
	old := unix.Umask(0)
	defer unix.Umask(old)
	for _, where := range []string{"upper", "lower"} {
		dir := filepath.Join(ws, "low")
		if where == "upper" {
			dir = filepath.Join(ws, "fresh")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			kind string
			mode uint32
		}{{"char", unix.S_IFCHR}, {"block", unix.S_IFBLK}} {
			t.Run(where+"/"+tc.kind, func(t *testing.T) {
				p := filepath.Join(dir, "n0")
				if err := unix.Mknod(p, tc.mode|0o755, int(unix.Mkdev(1, 2))); err != nil {
					t.Fatalf("mknod %s 0755 1 2: %v", tc.kind, err)
				}
				st := lstatT(t, p)
				if st.Mode&unix.S_IFMT != tc.mode || st.Mode&0o7777 != 0o755 {
					t.Errorf("type,mode %o, want %o", st.Mode, tc.mode|0o755)
				}
				if unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 2 {
					t.Errorf("major,minor %d,%d, want 1,2", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				if err := unix.Mknod(p, tc.mode|0o777, int(unix.Mkdev(3, 4))); !errors.Is(err, unix.EEXIST) {
					t.Errorf("mknod over it: %v, want EEXIST", err)
				}
				// Large numbers survive the round trip.
				q := filepath.Join(dir, "n1")
				if err := unix.Mknod(q, tc.mode|0o600, int(unix.Mkdev(4095, 4095))); err != nil {
					t.Fatal(err)
				}
				if st := lstatT(t, q); unix.Major(st.Rdev) != 4095 || unix.Minor(st.Rdev) != 4095 {
					t.Errorf("major,minor %d,%d, want 4095,4095", unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				// rename/23, link/00: hard links and renames of devices.
				lnk := filepath.Join(dir, "n0-link")
				if err := os.Link(p, lnk); err != nil {
					t.Fatalf("link: %v", err)
				}
				if st := lstatT(t, lnk); st.Nlink != 2 || st.Mode&unix.S_IFMT != tc.mode {
					t.Errorf("after link: nlink %d, mode %o", st.Nlink, st.Mode)
				}
				if err := os.Rename(q, p); err != nil {
					t.Fatalf("rename onto a linked device: %v", err)
				}
				if st := lstatT(t, lnk); st.Nlink != 1 || unix.Major(st.Rdev) != 1 {
					t.Errorf("the other link after rename: nlink %d, rdev %d:%d", st.Nlink, unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
				for _, x := range []string{p, lnk} {
					if err := os.Remove(x); err != nil {
						t.Fatalf("unlink: %v", err)
					}
				}
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after unlink: %v", err)
				}
			})
		}
	}

	// mknod/00: a FIFO's mode follows umask, its owner is the caller.
	unix.Umask(0o077)
	fifo := filepath.Join(ws, "fresh", "fifo")
	if err := unix.Mknod(fifo, unix.S_IFIFO|0o151, 0); err != nil {
		t.Fatal(err)
	}
	if st := lstatT(t, fifo); st.Mode != unix.S_IFIFO|0o100 {
		t.Errorf("fifo 0151 under umask 077: %o, want fifo,0100", st.Mode)
	}
	unix.Umask(0)

	// Char 0/0 is the whiteout record: not a file anyone may make.
	if err := unix.Mknod(filepath.Join(ws, "fresh", "w"), unix.S_IFCHR|0o600, 0); !errors.Is(err, unix.EPERM) {
		t.Errorf("mknod c 0 0: %v, want EPERM", err)
	}
	// A device made where a lower file was deleted (over its whiteout)
	// is a device, not a deletion, and stays one across a remount.
	over := filepath.Join(ws, "README.md")
	if err := os.Remove(over); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(over, unix.S_IFCHR|0o640, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatalf("mknod over a whiteout: %v", err)
	}
	names := func() string {
		entries, err := os.ReadDir(ws)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, en := range entries {
			out = append(out, en.Name())
		}
		return strings.Join(out, " ")
	}
	if !strings.Contains(names(), "README.md") {
		t.Errorf("listing lacks the device made over a whiteout: %s", names())
	}
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	e.mount()
	ws = filepath.Join(e.mnt, "dev")
	if st := lstatT(t, filepath.Join(ws, "README.md")); st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Minor(st.Rdev) != 3 {
		t.Errorf("after remount: mode %o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	// The mount is nodev: the device gives nothing.
	if f, err := os.Open(filepath.Join(ws, "README.md")); err == nil {
		f.Close()
		t.Error("opened a device node through a nodev mount")
	}
}

// TestMknodDeviceNeedsCapability: the kernel refuses a device node to a
// caller without CAP_MKNOD (mknod/03's EPERM), before gitfs sees it.
func TestMknodDeviceNeedsCapability(t *testing.T) {
	requireRootForDevices(t)
	e := newEnv(t, sampleFiles())
	ws := e.create("nocap")
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	out, err := asNobody(t, "mknod "+filepath.Join(ws, "c")+" c 1 2")
	if err == nil || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("mknod c 1 2 as nobody: %q, %v; want EPERM", out, err)
	}
	if out, err := asNobody(t, "mkfifo "+filepath.Join(ws, "f")+" && stat -c %u "+filepath.Join(ws, "f")); err != nil || strings.TrimSpace(out) != "65534" {
		t.Errorf("mkfifo as nobody: %q, %v; want it made and owned by 65534", out, err)
	}
}
