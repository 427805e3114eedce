//go:build linux

package fs_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

// asNobody runs a shell command as uid/gid 65534.
func asNobody(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPermissions: default_permissions and allow_other are in force, the
// daemon's umask is not applied a second time, and mode 0000 stays 0000.
func TestPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another user")
	}
	e := newEnv(t, sampleFiles())
	ws := e.create("perm")
	old := unix.Umask(0)
	defer unix.Umask(old)
	for p, mode := range map[string]os.FileMode{"m0620": 0o620, "m0000": 0, "m0777": 0o777} {
		fp := filepath.Join(ws, p)
		if err := os.WriteFile(fp, nil, mode); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(fp); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode(), mode, err)
		}
	}
	if err := os.Mkdir(filepath.Join(ws, "d0750"), 0o750); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(ws, "d0750")); st.Mode().Perm() != 0o750 {
		t.Errorf("mkdir 0750 gives %v", st.Mode())
	}
	// Another user may read (allow_other) but not write root's files
	// (default_permissions).
	out, err := asNobody(t, "cat "+filepath.Join(ws, "README.md"))
	if err != nil || out != "hello gitfs\n" {
		t.Errorf("nobody reads: %q %v", out, err)
	}
	out, err = asNobody(t, "echo x >> "+filepath.Join(ws, "README.md"))
	if err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("nobody writes root's file: %q %v", out, err)
	}
	if out, err = asNobody(t, "chmod 777 "+filepath.Join(ws, "README.md")); err == nil {
		t.Errorf("nobody chmods root's file: %q", out)
	}
	if out, err = asNobody(t, "rm -f "+filepath.Join(ws, "src/a.go")); err == nil {
		t.Errorf("nobody unlinks in root's dir: %q", out)
	}
	// A file given to nobody is theirs to write; what they create is theirs.
	if err := os.Chown(filepath.Join(ws, "m0777"), 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(ws, "data"), 0o777); err != nil {
		t.Fatal(err)
	}
	if out, err := asNobody(t, "echo mine > "+filepath.Join(ws, "m0777")+" && echo new > "+filepath.Join(ws, "data/n")); err != nil {
		t.Errorf("nobody writes own file: %q %v", out, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(ws, "data/n"), &st); err != nil || st.Uid != 65534 || st.Gid != 65534 {
		t.Errorf("file created by nobody: uid %d gid %d %v", st.Uid, st.Gid, err)
	}
	// A workspace created for nobody is nobody's to change.
	if _, err := e.fs.Create(t.Context(), "nobodys", workspace.Spec{Repo: "demo", Commit: e.commit, UID: 65534, GID: 65534}); err != nil {
		t.Fatal(err)
	}
	nws := filepath.Join(e.mnt, "nobodys")
	if out, err := asNobody(t, "echo x >> "+nws+"/README.md && echo y > "+nws+"/top && mkdir "+nws+"/src/d && mv "+nws+"/src "+nws+"/src2"); err != nil {
		t.Errorf("nobody in own workspace: %q %v", out, err)
	}
	if got := readFile(t, nws+"/README.md"); got != "hello gitfs\nx\n" {
		t.Errorf("nobody's write: %q", got)
	}
	// statfs reports the upper layer's disk.
	var sfs, want unix.Statfs_t
	if err := unix.Statfs(ws, &sfs); err != nil {
		t.Fatal(err)
	}
	unix.Statfs(e.root, &want)
	if sfs.Blocks != want.Blocks || sfs.Bsize != want.Bsize {
		t.Errorf("statfs: %d blocks of %d, want %d of %d", sfs.Blocks, sfs.Bsize, want.Blocks, want.Bsize)
	}
	// Hard links share an inode.
	if err := os.Link(filepath.Join(ws, "src/b.go"), filepath.Join(ws, "hl")); err != nil {
		t.Fatal(err)
	}
	if inode(t, filepath.Join(ws, "src/b.go")) != inode(t, filepath.Join(ws, "hl")) {
		t.Errorf("hard links have different inode numbers")
	}
	var st2 unix.Stat_t
	unix.Stat(filepath.Join(ws, "hl"), &st2)
	if st2.Nlink != 2 {
		t.Errorf("nlink %d", st2.Nlink)
	}
}

// TestENOSPC: a full upper disk fails the writer with ENOSPC and loses
// nothing already written; a copy-up that does not fit leaves the file as
// it was.
func TestENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
	files := append(sampleFiles(), gittest.File{Path: "huge.bin", Content: big})
	e := newEnvWith(t, files, func(root string) {
		wsDir := filepath.Join(root, "workspaces")
		os.MkdirAll(wsDir, 0o755)
		if err := unix.Mount("tmpfs", wsDir, "tmpfs", 0, "size=1m"); err != nil {
			t.Skipf("cannot mount tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(wsDir, unix.MNT_DETACH) })
	})
	ws := e.create("full")
	f, err := os.OpenFile(filepath.Join(ws, "fill"), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("z"), 64<<10)
	written := 0
	for {
		n, err := f.Write(chunk)
		written += n
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("write: %v, want ENOSPC", err)
			}
			break
		}
		if written > 8<<20 {
			t.Fatal("no ENOSPC on a 1 MiB upper disk")
		}
	}
	f.Close()
	b, err := os.ReadFile(filepath.Join(ws, "fill"))
	if err != nil || len(b) != written || !bytes.Equal(b, bytes.Repeat([]byte("z"), written)) {
		t.Errorf("after ENOSPC read back %d bytes (%v), wrote %d", len(b), err, written)
	}
	os.Remove(filepath.Join(ws, "fill"))
	// The kernel releases the upper descriptor asynchronously after close.
	waitFor(t, "space freed", func() bool {
		var s unix.Statfs_t
		unix.Statfs(filepath.Join(e.root, "workspaces"), &s)
		return s.Bavail*uint64(s.Bsize) > 512<<10
	})
	// Copy-up of a 2 MiB file into 1 MiB fails and changes nothing.
	// (At open(2) with per-open handles, at the first write(2) in no-open
	// mode, where copy-up waits for it.)
	err = writeOne(filepath.Join(ws, "huge.bin"))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("copy-up on a full disk: %v, want ENOSPC", err)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "huge.bin")); !bytes.Equal(got, big) {
		t.Errorf("huge.bin changed by a failed copy-up (%d bytes)", len(got))
	}
	// Truncating needs no copy of the data.
	if err := os.WriteFile(filepath.Join(ws, "huge.bin"), []byte("x"), 0o644); err != nil {
		out, _ := exec.Command("sh", "-c", "df "+filepath.Join(e.root, "workspaces")+"; ls -laR "+filepath.Join(e.root, "workspaces")).CombinedOutput()
		t.Errorf("O_TRUNC write on a full disk: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(ws, "README.md")); string(got) != "hello gitfs\n" {
		t.Errorf("README after ENOSPC: %q", got)
	}
}
