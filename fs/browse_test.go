//go:build linux

package fs_test

import (
	"bytes"
	"context"
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

	"golang.org/x/sys/unix"

	gitfs "github.com/gitfs/gitfs/fs"
	"github.com/gitfs/gitfs/internal/gittest"
)

// published is how many snapshots e's store has.
func published(t *testing.T, e *env) int {
	t.Helper()
	l, err := e.store.List()
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestBrowseLazy: listing @repo, heads/ or tags/, and looking a ref up,
// build no snapshot; reading a directory inside a ref builds that one.
func TestBrowseLazy(t *testing.T) {
	e := newEnv(t, sampleFiles())
	for i := 0; i < 20; i++ {
		c := e.repo.Commit(t, "main", fmt.Sprintf("c%d", i), append(sampleFiles(), gittest.File{Path: "n", Content: []byte(fmt.Sprint(i))}))
		gittest.Git(t, e.repo.Dir, "tag", fmt.Sprintf("v%02d", i), c)
		gittest.Git(t, e.repo.Dir, "branch", fmt.Sprintf("b/%02d", i), c)
	}
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	base := published(t, e)
	repo := filepath.Join(e.mnt, "@demo")
	for _, dir := range []string{repo, filepath.Join(repo, "tags"), filepath.Join(repo, "heads"), filepath.Join(repo, "heads", "b")} {
		names, err := os.ReadDir(dir)
		if err != nil || len(names) == 0 {
			t.Fatalf("list %s: %v %v", dir, names, err)
		}
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(dir, n.Name())); err != nil {
				t.Errorf("stat %s: %v", n.Name(), err)
			}
		}
	}
	if n := published(t, e); n != base {
		t.Fatalf("listing and stat'ing refs built %d snapshots, want none", n-base)
	}
	if got := readFile(t, filepath.Join(repo, "tags/v07/n")); got != "7" {
		t.Errorf("tags/v07/n = %q", got)
	}
	names, err := os.ReadDir(filepath.Join(repo, "heads/b/03"))
	if err != nil || len(names) != len(sampleTopLevel()) {
		t.Errorf("heads/b/03 lists %v (%v)", names, err)
	}
	if n := published(t, e); n != base+2 {
		t.Errorf("reading two refs built %d snapshots, want 2", n-base)
	}
	// A moved branch shows the new commit once the last resolution is
	// older than refTTL (250 ms).
	c := e.repo.Commit(t, "b/03", "moved", append(sampleFiles(), gittest.File{Path: "n", Content: []byte("moved")}))
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if got := readFile(t, filepath.Join(repo, "heads/b/03/n")); got != "moved" {
		t.Errorf("heads/b/03 after it moved to %s: n = %q", c, got)
	}
	// diff -r of two tags: one file differs.
	out, err := exec.Command("diff", "-r", filepath.Join(repo, "tags/v01"), filepath.Join(repo, "tags/v02")).CombinedOutput()
	if !strings.Contains(string(out), "diff -r") || strings.Count(string(out), "\n< ") != 1 {
		t.Errorf("diff -r of two tags: %v\n%s", err, out)
	}
}

// TestBrowseRootForgottenAndLookedUpAgain: a lookup racing the kernel's
// forget of a browse root can hand the kernel the forgotten root again;
// its next read leases the snapshot anew instead of failing (a moved
// branch's revalidation, a forget and a lookup at once, made
// heads/b/03/n ENOENT once in CI).
func TestBrowseRootForgottenAndLookedUpAgain(t *testing.T) {
	e := newEnv(t, sampleFiles())
	gittest.Git(t, e.repo.Dir, "tag", "v1", e.commit)
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.mnt, "@demo/tags/v1/README.md")); got != "hello gitfs\n" {
		t.Fatalf("tags/v1/README.md = %q", got)
	}
	if errno := gitfs.ForgetThenLookup(e.fs, "@demo/tags/v1", "README.md"); errno != 0 {
		t.Fatalf("lookup in a browse root forgotten and handed out again: %v", errno)
	}
	if got := readFile(t, filepath.Join(e.mnt, "@demo/tags/v1/src/a.go")); got != "package a\n" {
		t.Errorf("tags/v1/src/a.go after = %q", got)
	}
}

// TestBrowseSharedFiles: a file two tags hold unchanged is one inode with
// one set of times (so diff -r skips it), a changed one is not; the file
// reads after the view that first showed it let go, and holds that
// commit's snapshot against gc until the kernel forgets it.
func TestBrowseSharedFiles(t *testing.T) {
	e := newEnv(t, sampleFiles())
	gittest.Git(t, e.repo.Dir, "tag", "v1", e.commit)
	// src/c1.go and src/c2.go: one blob (not v1's), one file under two names.
	copied := []gittest.File{{Path: "src/c1.go", Content: []byte("package c\n")}, {Path: "src/c2.go", Content: []byte("package c\n")}}
	c2 := e.repo.Commit(t, "main", "second", append(sampleFiles(), append(copied, gittest.File{Path: "n", Content: []byte("2")})...))
	gittest.Git(t, e.repo.Dir, "tag", "v2", c2)
	c3 := e.repo.Commit(t, "main", "third", append(sampleFiles(), append(copied, gittest.File{Path: "n", Content: []byte("3")})...))
	gittest.Git(t, e.repo.Dir, "tag", "v3", c3)
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	tag := func(name, p string) string { return filepath.Join(e.mnt, "@demo/tags", name, p) }
	stat := func(p string) *syscall.Stat_t {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	for _, p := range []string{"README.md", "src/a.go", "bin/run.sh"} {
		a, b := stat(tag("v1", p)), stat(tag("v2", p))
		if a.Ino != b.Ino || a.Dev != b.Dev || a.Mtim != b.Mtim || a.Ctim != b.Ctim || a.Mode != b.Mode || a.Size != b.Size {
			t.Errorf("%s in two tags: %+v and %+v, want one file", p, a, b)
		}
	}
	if a, b := stat(tag("v2", "n")), stat(tag("v3", "n")); a.Ino == b.Ino || a.Mtim == b.Mtim {
		t.Errorf("n, changed between v2 and v3: inode %d and %d, mtime %v and %v, want different", a.Ino, b.Ino, a.Mtim, b.Mtim)
	}
	if a, b := stat(tag("v2", "src/c1.go")), stat(tag("v3", "src/c2.go")); a.Ino != b.Ino {
		t.Errorf("src/c1.go and src/c2.go, one blob: inodes %d and %d", a.Ino, b.Ino)
	}
	for _, p := range []string{"src/c1.go", "src/c2.go"} {
		if got := readFile(t, tag("v2", p)); got != "package c\n" {
			t.Errorf("v2/%s = %q", p, got)
		}
	}
	if names, err := os.ReadDir(tag("v2", "src")); err != nil || len(names) != 5 {
		t.Errorf("v2/src lists %v (%v), want a.go, b.go, c1.go, c2.go, deep", names, err)
	}
	out, err := exec.Command("diff", "-r", tag("v2", ""), tag("v3", "")).CombinedOutput()
	if !strings.Contains(string(out), "diff -r") || strings.Count(string(out), "\n< ") != 1 {
		t.Errorf("diff -r of two tags: %v\n%s", err, out)
	}

	// README.md, found by v1 (stat'ed there first), read through v2:
	// held through v1's lease once v1's root is forgotten.
	// src/deep/other.txt, found by v2 (diff -r), read only after v2's
	// root was forgotten: leased anew.
	if got := readFile(t, tag("v2", "README.md")); got != "hello gitfs\n" {
		t.Fatalf("v2/README.md = %q", got)
	}
	for _, v := range []string{"@demo/tags/v1", "@demo/tags/v2"} {
		if !gitfs.ForgetBrowseRoot(e.fs, v) {
			t.Fatalf("no browse root of %s", v)
		}
	}
	if removed, err := e.store.GC(t.Context(), nil); err != nil || slices.Contains(removed, e.commit) {
		t.Fatalf("gc while README.md is held: removed %v (%v), want v1's snapshot kept", removed, err)
	}
	if got := readFile(t, tag("v3", "src/deep/other.txt")); got != "other\n" {
		t.Errorf("v3/src/deep/other.txt, found by v2, read after v2's root was forgotten = %q", got)
	}
	dropPages(t, tag("v3", "README.md"))
	if got := readFile(t, tag("v3", "README.md")); got != "hello gitfs\n" {
		t.Errorf("v3/README.md after v1's root was forgotten = %q", got)
	}
	if !gitfs.ForgetShared(e.fs, "@demo/tags/v3", "README.md") {
		t.Fatal("README.md of tags/v3 is not a shared file")
	}
	if removed, err := e.store.GC(t.Context(), nil); err != nil || !slices.Contains(removed, e.commit) {
		t.Errorf("gc once README.md is forgotten: removed %v (%v), want v1's snapshot among them", removed, err)
	}
}

// dropPages drops the kernel's cached pages of p, so that its next read
// reaches the daemon.
func dropPages(t *testing.T, p string) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// sampleTopLevel are the names at the top of sampleFiles() plus "n".
func sampleTopLevel() []string {
	return []string{"README.md", "bin", "data", "dirlink", "empty", "link", "n", "src"}
}

// TestBrowseAbbreviated: commits/ takes a commit id abbreviated as
// rev-parse does; one that several commits start with, or that names a
// branch rather than a commit starting with it, is ENOENT.
func TestBrowseAbbreviated(t *testing.T) {
	e := newEnv(t, sampleFiles())
	commits := filepath.Join(e.mnt, "@demo", "commits")
	for _, name := range []string{e.commit, e.commit[:7], e.commit[:4], strings.ToUpper(e.commit[:10])} {
		if got := readFile(t, filepath.Join(commits, name, "README.md")); got != "hello gitfs\n" {
			t.Errorf("commits/%s/README.md = %q", name, got)
		}
	}
	for _, name := range []string{"zzzz", e.commit[:3], "0000000", e.commit + "0"} {
		if _, err := os.Stat(filepath.Join(commits, name)); !os.IsNotExist(err) {
			t.Errorf("commits/%s: %v, want ENOENT", name, err)
		}
	}
	// Enough commits that two share their first four digits (fast-import
	// makes the same ids every run).
	var b bytes.Buffer
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&b, "commit refs/heads/many\ncommitter t <t@t> 1704164645 +0000\ndata 4\nc%03d\nM 100644 inline f\ndata 3\n%03d\n\n", i, i)
	}
	cmd := exec.Command("git", "fast-import", "--quiet", "--force")
	cmd.Dir, cmd.Stdin = e.repo.Dir, &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v: %s", err, out)
	}
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	prefix := ""
	for _, c := range strings.Fields(gittest.Git(t, e.repo.Dir, "rev-list", "many")) {
		if seen[c[:4]] {
			prefix = c[:4]
			break
		}
		seen[c[:4]] = true
	}
	if prefix == "" {
		t.Fatal("no two of 600 commits share four digits")
	}
	if _, err := os.Stat(filepath.Join(commits, prefix)); !os.IsNotExist(err) {
		t.Errorf("ambiguous commits/%s: %v, want ENOENT", prefix, err)
	}
}

// blockingResolver holds every Resolve until gate closes, and counts how
// many run at once.
type blockingResolver struct {
	resolver
	gate    chan struct{}
	entered chan struct{}
	mu      sync.Mutex // guards in and most
	in      int
	most    int
}

func (r *blockingResolver) Resolve(ctx context.Context, repo, rev string) (string, error) {
	r.mu.Lock()
	r.in++
	r.most = max(r.most, r.in)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.in--
		r.mu.Unlock()
	}()
	r.entered <- struct{}{}
	<-r.gate
	return r.resolver.Resolve(ctx, repo, rev)
}

// TestBrowseResolutionsBounded: browse-path resolutions (git processes,
// snapshot builds) run at most BrowseSlots at once across the daemon,
// however many lookups the kernel sends: the others wait for a slot, and
// all are answered once slots free up.
func TestBrowseResolutionsBounded(t *testing.T) {
	e := newEnv(t, []gittest.File{{Path: "a", Content: []byte("a")}})
	if err := e.fs.Unmount(); err != nil {
		t.Fatal(err)
	}
	r := &blockingResolver{resolver: resolver{e.ms}, gate: make(chan struct{}), entered: make(chan struct{}, 256)}
	f, err := gitfs.New(gitfs.Options{Root: e.root, Snapshots: e.store, Resolver: r, Log: e.log})
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := f.Mount(mnt); err != nil {
		t.Fatalf("mount: %v", err)
	}
	opened := true
	t.Cleanup(func() {
		if opened {
			close(r.gate)
		}
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	e.fs = f
	n := gitfs.BrowseSlots(f)
	m := n + 3
	var wg sync.WaitGroup
	for i := 0; i < m; i++ {
		// Spread over directories: the kernel may serialize lookups in one.
		p := filepath.Join(mnt, "@demo", []string{"heads", "tags"}[i%2], fmt.Sprintf("none%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			os.Stat(p)
		}()
	}
	entered := 0
	deadline := time.Now().Add(2 * time.Minute)
	for entered < n || gitfs.BrowseWaiting(f) < int64(m-n) {
		select {
		case <-r.entered:
			entered++
		case <-time.After(5 * time.Millisecond):
		}
		if entered > n {
			t.Errorf("%d resolutions ran at once, want at most %d", entered, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d resolutions running, %d waiting: want %d and %d", entered, gitfs.BrowseWaiting(f), n, m-n)
		}
	}
	close(r.gate)
	opened = false
	wg.Wait()
	r.mu.Lock()
	most := r.most
	r.mu.Unlock()
	if most > n {
		t.Errorf("%d resolutions ran at once, want at most %d", most, n)
	}
}
