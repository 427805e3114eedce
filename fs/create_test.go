//go:build linux

package fs_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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
