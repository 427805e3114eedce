//go:build linux

package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/fuseuring"
	"github.com/gitfs/gitfs/internal/gittest"
)

// TestServeIOURing: `serve --io-uring` serves a workspace through FUSE
// over io_uring (internal/fuseuring), and it behaves as one served through
// /dev/fuse: its files are git archive's, small writes land, git works in
// it, and the daemon stops cleanly. The fuse module's enable_uring is set
// for the test and put back; mounts that do not ask for io_uring at INIT
// are not affected by it.
func TestServeIOURing(t *testing.T) {
	requireRoot(t)
	requireFUSE(t)
	if _, err := os.Stat(fuseuring.EnableParam); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this kernel has no FUSE over io_uring: %v", err)
		}
		t.Skipf("this kernel has no FUSE over io_uring: %v", err)
	}
	restore, err := fuseuring.SetEnabled(true) // held until the test ends
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Error(err)
		}
	})
	repo, root, _ := mountFixture(t, 300)
	if r := gitfs(t, root, "doctor"); !strings.Contains(r.stdout, "FUSE over io_uring is on") {
		t.Errorf("gitfs doctor does not say io_uring is on:\n%s", r.stdout)
	}
	d := serve(t, root, "", "--io-uring")
	if !strings.Contains(d.stderr.String(), "io_uring=true") {
		t.Fatalf("the daemon did not serve through io_uring:\n%s", d.stderr.String())
	}
	ws := wsCreate(t, root, "ring", "--repo", "demo", "--rev", "main")
	want := gittest.Archive(t, repo.Dir, "main")
	if diff := gittest.Diff(want, gittest.ReadDir(t, ws, ".git"), 10); len(diff) > 0 {
		t.Errorf("the workspace differs from git archive:\n%s", strings.Join(diff, "\n"))
	}
	// 4 KiB writes, one WRITE request each, then read back.
	f, err := os.Create(filepath.Join(ws, "written.bin"))
	if err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte("gitfs io_uring\n"), 4096/15+1)[:4096]
	for i := 0; i < 512; i++ {
		if _, err := f.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(ws, "written.bin")); err != nil || !bytes.Equal(got, bytes.Repeat(block, 512)) {
		t.Fatalf("written.bin reads %d bytes (%v)", len(got), err)
	}
	sh := func(script string) string {
		t.Helper()
		r := shAs(t, 0, "cd "+ws+" && "+script)
		if r.code != 0 {
			t.Fatalf("%s: %d %s", script, r.code, r.stderr)
		}
		return r.stdout
	}
	if got := sh("git status --porcelain"); got != "?? written.bin\n" {
		t.Errorf("git status: %q", got)
	}
	sh("git add written.bin && git -c user.name=t -c user.email=t@t commit -qm written && git status --porcelain")
	if got := sh("git log --format=%s -1"); got != "written\n" {
		t.Errorf("git log: %q", got)
	}
	d.stop(t)
	if isMounted(d.mnt) {
		t.Errorf("%s still mounted after the daemon stopped", d.mnt)
	}
}
