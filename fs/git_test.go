//go:build linux

package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

// TestGitInWorkspace: git itself (lock files, renames, fsync, mmap of
// packs) works in a workspace.
func TestGitInWorkspace(t *testing.T) {
	e := newEnv(t, append(sampleFiles(), gittest.Generate(100, 5)...))
	ws := e.create("git")
	script := `set -e; cd ` + ws + `
export GIT_CONFIG_NOSYSTEM=1 HOME=/tmp GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q . && git add -A && git commit -qm one
echo change >> README.md && git mv src/a.go src/a2.go && git commit -qam two
git gc -q --aggressive && git fsck --no-progress && git status --porcelain | wc -l`
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("git in workspace: %v\n%s", err, out)
	}
}

// TestGitStatusReadsNoBlob: a new workspace's index holds exactly the stat
// data the mount reports, so git status is clean without reading a blob;
// a pinned pack cannot be written, even by root.
func TestGitStatusReadsNoBlob(t *testing.T) {
	e := newGitEnv(t, append(sampleFiles(), gittest.Generate(2000, 9)...))
	ws := e.create("git")
	env := "GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
	before := e.fs.Stats()
	out, err := exec.Command("sh", "-c", "cd "+ws+" && "+env+"git status --porcelain && "+env+"git rev-parse HEAD").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != e.commit {
		t.Fatalf("git status in a new workspace: %v: %q, want clean at %s", err, out, e.commit)
	}
	after := e.fs.Stats()
	if n := after.Inflations - before.Inflations; n != 0 {
		t.Errorf("git status inflated %d blobs, want none", n)
	}
	if n := after.LowerReads - before.LowerReads; n != 0 {
		t.Errorf("git status read %d times from lower files, want none", n)
	}
	packs, err := filepath.Glob(filepath.Join(ws, ".git", "objects", "pack", "pack-*.pack"))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no pinned packs: %v %v", packs, err)
	}
	for _, p := range packs {
		// Refused at open(2) with per-open handles, at the first write(2)
		// in no-open mode (the kernel opens by itself: raw.go).
		if err := writeOne(p); err == nil {
			t.Errorf("%s written: it is shared with the mirror", p)
		}
		if err := os.Chmod(p, 0o644); err == nil {
			t.Errorf("chmod of %s succeeded: it is shared with the mirror", p)
		}
	}
	// Status of the workspace itself never lists the git dir.
	st, err := e.fs.Status("git")
	if err != nil || len(st) != 0 {
		t.Errorf("ws status after git status: %v %v, want no changes", st, err)
	}
}

// TestGitWaitsForUpdatedGitDir: ws update returns once the tree shows the
// new commit and moves the git dir in the background; a lookup of .git
// meanwhile waits for it, so git never reads the old HEAD beside the new
// tree, even where the kernel had the git dir's entries cached.
func TestGitWaitsForUpdatedGitDir(t *testing.T) {
	e, ws, head, c2 := gitDirAndNextCommit(t)
	ctx := context.Background()
	release := e.holdGitDirs()
	defer release()
	done := make(chan error, 1)
	go func() { done <- e.fs.Update(ctx, "w", workspace.Spec{Commit: c2}, workspace.KeepChanges) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // a hang, not a measurement
		t.Fatal("ws update waited for the git dir")
	}
	if _, err := os.Stat(filepath.Join(ws, "new.txt")); err != nil {
		t.Errorf("after ws update the tree does not show the new commit: %v", err)
	}
	read := make(chan string, 1)
	go func() {
		b, err := os.ReadFile(head)
		if err != nil {
			read <- err.Error()
			return
		}
		read <- strings.TrimSpace(string(b))
	}()
	time.Sleep(200 * time.Millisecond) // the reader reaches the lookup (if it returns at once, it read the old HEAD)
	release()
	if got := <-read; got != c2 {
		t.Errorf(".git/HEAD read while the git dir was being moved: %q, want %s", got, c2)
	}
}

// TestRootListsGitDirAtOnce: a new workspace's root lists .git from the
// start, without waiting for the git dir, and keeps its times and link
// count when the git dir is done; before, .git came into the root when
// the background maker began, so a listing taken first (which the kernel
// keeps) never showed it, and tar found the root changed as it read.
func TestRootListsGitDirAtOnce(t *testing.T) {
	e := newGitEnv(t, sampleFiles())
	release := e.holdGitDirs()
	defer release()
	ws := e.create("w")
	before := lstatT(t, ws)
	listed := make(chan []string, 1)
	go func() {
		ents, err := os.ReadDir(ws)
		if err != nil {
			t.Error(err)
		}
		var names []string
		for _, de := range ents {
			names = append(names, de.Name())
		}
		listed <- names
	}()
	var names []string
	select {
	case names = <-listed:
	case <-time.After(time.Minute): // a hang, not a measurement
		release()
		t.Fatal("listing a new workspace waited for its git dir")
	}
	if !slices.Contains(names, ".git") {
		t.Errorf("a new workspace lists %q, no .git", names)
	}
	release()
	if _, err := os.Stat(filepath.Join(ws, ".git", "HEAD")); err != nil {
		t.Fatal(err)
	}
	after := lstatT(t, ws)
	if before.Mtim != after.Mtim || before.Ctim != after.Ctim || before.Nlink != after.Nlink {
		t.Errorf("the root changed when its git dir was made: mtime %v ctime %v nlink %d -> %v %v %d",
			before.Mtim, before.Ctim, before.Nlink, after.Mtim, after.Ctim, after.Nlink)
	}
	ents, err := os.ReadDir(ws)
	if err != nil || !slices.ContainsFunc(ents, func(de os.DirEntry) bool { return de.Name() == ".git" && de.IsDir() }) {
		t.Errorf("listed again: %v %v, want .git among them", ents, err)
	}
}

// holdGitDirs makes every git dir's maker wait, until the function it
// returns is called (once or more).
func (e *env) holdGitDirs() (release func()) {
	gate := make(chan struct{})
	e.gitGate.Store(&gate)
	var once sync.Once
	return func() {
		once.Do(func() {
			e.gitGate.Store(nil)
			close(gate)
		})
	}
}

// TestPendingGitDirFinishedAtStart: a daemon killed after ws update
// returned, before the git dir followed (here the switch is made on disk
// and the git dir left as it was), finishes the git dir when it starts
// again: git sees the new commit, clean.
func TestPendingGitDirFinishedAtStart(t *testing.T) {
	e, _, _, c2 := gitDirAndNextCommit(t)
	ctx := context.Background()
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	opts := workspace.Options{Root: e.root, XattrPrefix: "user.gitfs."}
	if os.Geteuid() == 0 {
		opts = workspace.Options{Root: e.root, Chown: true, XattrPrefix: "trusted.gitfs."}
	}
	w, err := workspace.Load(ctx, opts, workspace.Dir(e.root, "w"), e.store)
	if err != nil {
		t.Fatal(err)
	}
	snap, release, err := e.store.Get(ctx, "demo", c2)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := w.Switch(workspace.Spec{Repo: "demo", Commit: c2}, snap, release, workspace.KeepChanges)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Saved(); err != nil {
		t.Fatal(err)
	}
	sw.Release()
	w.Close()

	e.mount()
	ws := filepath.Join(e.mnt, "w")
	env := "GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
	out, err := exec.Command("sh", "-c", "cd "+ws+" && "+env+"git rev-parse HEAD && "+env+"git status --porcelain").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != c2 {
		t.Errorf("git after the restart: %v: %q, want clean at %s", err, out, c2)
	}
}

// gitDirAndNextCommit makes workspace "w" with its git dir complete and a
// next commit (new.txt added) in the mirror; it returns the env, the
// workspace, its .git/HEAD and that commit.
func gitDirAndNextCommit(t *testing.T) (e *env, ws, head, next string) {
	t.Helper()
	e = newGitEnv(t, sampleFiles())
	ws = e.create("w")
	head = filepath.Join(ws, ".git", "HEAD")
	if b, err := os.ReadFile(head); err != nil || strings.TrimSpace(string(b)) != e.commit {
		t.Fatalf(".git/HEAD of a new workspace: %q, %v; want %s", b, err, e.commit)
	}
	next = e.repo.Commit(t, "main", "second", append(sampleFiles(), gittest.File{Path: "new.txt", Content: []byte("new\n")}))
	if _, err := e.ms.Fetch(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	return e, ws, head, next
}

// TestConcurrentUpdatesAndGitDir: updates of one workspace from two
// callers at once never switch it while the git dir of the one before is
// being written (the race detector watches), and the git dir ends at the
// commit the workspace shows, clean.
func TestConcurrentUpdatesAndGitDir(t *testing.T) {
	e, ws, head, c2 := gitDirAndNextCommit(t)
	ctx := context.Background()
	commits := []string{e.commit, c2}
	errs := make(chan error, 2)
	for g := 0; g < 2; g++ {
		go func() {
			var err error
			for i := 0; i < 6 && err == nil; i++ {
				err = e.fs.Update(ctx, "w", workspace.Spec{Commit: commits[(g+i)%2]}, workspace.KeepChanges)
			}
			errs <- err
		}()
	}
	for g := 0; g < 2; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	env := "GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
	out, err := exec.Command("sh", "-c", "cd "+ws+" && "+env+"git status --porcelain").CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("git status after concurrent updates (HEAD %s): %v: %q, want clean", strings.TrimSpace(string(b)), err, out)
	}
}

// TestRemoveWhileGitDirIsMade: a workspace removed while its git dir is
// still being made (ws create returns before it is done) is gone from
// disk once ws rm returns, and its name may be used again. The maker used
// to pin packs through a host path below the workspace's directory after
// ws rm had moved it to the trash, making ROOT/workspaces/NAME/work/...
// again: every later ws create of the name then failed ("on disk but not
// loaded").
func TestRemoveWhileGitDirIsMade(t *testing.T) {
	e := newGitEnv(t, sampleFiles())
	release := e.holdGitDirs()
	t.Cleanup(release)
	e.create("w")
	done := make(chan error, 1)
	go func() { done <- e.fs.Remove("w") }()
	dir := workspace.Dir(e.root, "w")
	// Give Remove its chance to move the directory away while the maker
	// waits; when it waits for the maker first, the directory stays.
	for i := 0; i < 50; i++ {
		if _, err := os.Lstat(dir); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		ents, _ := os.ReadDir(dir)
		t.Errorf("after ws rm, %s: %v, holding %v; want it gone", dir, err, ents)
	}
	e.create("w")
}

// TestFailedGitDirRepairedOnLookup: when making a workspace's git dir
// fails (here its refs cannot be read; in the field, a full disk failed
// the index), git in the workspace fails with that error instead of
// finding a git dir without an index (every file staged as deleted, a
// `git commit -a` away from committing an empty tree), and once the cause
// is gone the next git run finds the git dir made, without a restart.
func TestFailedGitDirRepairedOnLookup(t *testing.T) {
	e := newGitEnv(t, sampleFiles())
	fail := fmt.Errorf("read refs: %w", syscall.ENOSPC)
	e.gitFail.Store(&fail)
	ws := e.create("w")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ws, ".git", "index"), &st); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("stat .git/index while the git dir cannot be made: %v, want ENOSPC", err)
	}
	e.gitFail.Store(nil)
	env := "GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
	out, err := exec.Command("sh", "-c", "cd "+ws+" && "+env+"git rev-parse HEAD && "+env+"git status --porcelain").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != e.commit {
		t.Errorf("git once the git dir can be made: %v: %q, want clean at %s", err, out, e.commit)
	}
}
