package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCheckoutGitSurvivesGC: a `checkout --git` on the root's file
// system owns its objects (the packs are hard-linked in), so gc may drop
// the snapshot and the checkout, moved elsewhere too, still works; on
// another file system it borrows the snapshot's objects through
// alternates, and gc keeps that snapshot until the checkout is gone.
func TestCheckoutGitSurvivesGC(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "c1", gittest.Generate(30, 9))
	gittest.Git(t, repo.Dir, "tag", "v1")
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", out)
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(out, moved); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "gc")
	for _, args := range [][]string{{"fsck", "--no-dangling"}, {"status", "--porcelain"}, {"describe", "--tags"}, {"log", "--oneline", "-1", "origin/main"}} {
		if b, err := exec.Command("git", append([]string{"-C", moved}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("git %v in a moved checkout after gc: %v: %s", args, err, b)
		}
	}
	if b, _ := exec.Command("git", "-C", moved, "remote", "get-url", "origin").Output(); string(b) != repo.Dir+"\n" {
		t.Errorf("origin of the checkout: %q, want %s", b, repo.Dir)
	}
	// Across file systems: borrowed, held.
	shm := crossDevice(t, root)
	far := filepath.Join(shm, "far")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", far)
	mustGitfs(t, root, "gc")
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); err != nil {
		t.Fatalf("gc removed a snapshot a --git checkout on another file system borrows from: %v", err)
	}
	if b, err := exec.Command("git", "-C", far, "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Fatalf("git fsck in the borrowing checkout after gc: %v: %s", err, b)
	}
	if err := os.RemoveAll(far); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "gc")
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); !os.IsNotExist(err) {
		t.Fatalf("snapshot kept after its only borrowing checkout was removed: %v", err)
	}
}

// crossDevice returns a fresh directory on another file system than dir
// (tmpfs /dev/shm), failing the test if there is none.
func crossDevice(t *testing.T, dir string) string {
	t.Helper()
	var a, b syscall.Stat_t
	if err := syscall.Stat(dir, &a); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/dev/shm", &b); err != nil || a.Dev == b.Dev {
		t.Fatalf("no file system other than %s's to check out into (/dev/shm: %v)", dir, err)
	}
	d, err := os.MkdirTemp("/dev/shm", "gitfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// TestGCBlobStore: the blob store filled (as the daemon fills it); plain
// gc keeps it (under its bound), gc --blob-cache-size 0 empties it
// (nothing leases the snapshot: a checkout --git borrows packs, not
// blobs), a checkout after it is whole and fills the store again where it
// has reflinks, and gc --contents removes what older versions left.
func TestGCBlobStore(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "c1", gittest.Generate(40, 5))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	keep := filepath.Join(crossDevice(t, root), "keep")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", keep) // borrows from the snapshot: holds it
	blobs := distinctBlobs(t, repo.Dir, commit)
	fillBlobStore(t, root, "demo", commit)
	if n := storedBlobs(t, root); n != blobs {
		t.Fatalf("the fill stored %d blobs, want %d", n, blobs)
	}
	mustGitfs(t, root, "gc")
	if n := storedBlobs(t, root); n != blobs {
		t.Fatalf("plain gc left %d of %d blobs", n, blobs)
	}
	legacy := filepath.Join(root, "snapshots", commit, "contents")
	if err := os.WriteFile(legacy, []byte("old"), 0o444); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "gc", "--blob-cache-size", "0", "--contents")
	if n := storedBlobs(t, root); n != 0 {
		t.Fatalf("gc --blob-cache-size 0 left %d blobs", n)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("gc --contents kept an old contents file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit, "meta.json")); err != nil {
		t.Fatalf("gc removed a held snapshot: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "demo", "main", out)
	if d := gittest.Diff(gittest.Archive(t, repo.Dir, commit), gittest.ReadDir(t, out), 5); len(d) > 0 {
		t.Fatalf("checkout after gc: %v", d)
	}
	want := 0
	if checkoutFillsStore(t, root, filepath.Dir(out)) {
		want = blobs
	}
	if n := storedBlobs(t, root); n != want {
		t.Fatalf("checkout after gc stored %d blobs, want %d", n, want)
	}
	if r := gitfs(t, root, "gc", "--blob-cache-size", "lots"); r.code == 0 {
		t.Error("gc --blob-cache-size lots: accepted")
	}
}
