//go:build linux

package fs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gitfs "github.com/gitfs/gitfs/fs"
	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// resolver is the daemon's Resolver, over a real mirror set.
type resolver struct{ ms *mirror.Set }

func (r resolver) Repos() ([]string, error) {
	infos, err := r.ms.List(context.Background())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, i := range infos {
		out = append(out, i.Name)
	}
	return out, nil
}

func (r resolver) Resolve(ctx context.Context, repo, rev string) (string, error) {
	m, err := r.ms.Get(ctx, repo)
	if err == nil {
		var c string
		if c, err = m.Resolve(ctx, rev); err == nil {
			return c, nil
		}
	}
	if errors.Is(err, mirror.ErrUnknownRev) || errors.Is(err, mirror.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", gitfs.ErrUnknown, err)
	}
	return "", err
}

func (r resolver) Refs(ctx context.Context, repo, kind string) ([]string, error) {
	m, err := r.ms.Get(ctx, repo)
	if err != nil {
		return nil, err
	}
	return m.Refs(ctx, kind)
}

func (r resolver) Perm(repo string) (uint32, uint32, uint32, error) {
	a, err := r.ms.Access(repo)
	if err != nil {
		return 0, 0, 0, err
	}
	return a.Owner, a.GID(), a.Mode(), nil
}

// env is a gitfs root with one mirror ("demo") and a mounted FS.
type env struct {
	git    bool // workspaces get git dirs (newGitEnv)
	t      *testing.T
	repo   *gittest.Repo
	root   string
	mnt    string
	ms     *mirror.Set
	store  *snapshot.Store
	fs     *gitfs.FS
	commit string // main
	log    *slog.Logger
	// gitGate, when set, holds every git dir's refs until it is closed.
	gitGate atomic.Pointer[chan struct{}]
	// gitFail, while set, fails every git dir's refs with it.
	gitFail atomic.Pointer[error]
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("GITFS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fuseUsable skips (or under CI=true fails) when no FUSE mount can be made.
func fuseUsable(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "/dev/fuse is missing"
	} else if os.Geteuid() != 0 {
		if _, err := os.Stat("/usr/bin/fusermount3"); err != nil {
			why = "not root and no fusermount3"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("FUSE unusable under CI=true: %s", why)
	}
	t.Skipf("FUSE unusable: %s", why)
}

// testGitSource is the daemon's workspace.GitSource, over a real mirror.
type testGitSource struct {
	m    *mirror.Mirror
	gate *atomic.Pointer[chan struct{}]
	fail *atomic.Pointer[error]
}

func (g testGitSource) URL(ctx context.Context) (string, error) { return g.m.URL(ctx) }
func (g testGitSource) FSMonitor() string                       { return "" }
func (g testGitSource) PinPacks(ctx context.Context, dir string) ([]string, error) {
	return g.m.PinPacks(ctx, dir)
}
func (g testGitSource) Refs(ctx context.Context) ([]workspace.GitRef, string, error) {
	if g.gate != nil {
		if gate := g.gate.Load(); gate != nil {
			<-*gate
		}
	}
	if g.fail != nil {
		if err := g.fail.Load(); err != nil {
			return nil, "", *err
		}
	}
	refs, head, err := g.m.RefList(ctx)
	out := make([]workspace.GitRef, len(refs))
	for i, r := range refs {
		out[i] = workspace.GitRef{Name: r.Name, ID: r.ID, Peeled: r.Peeled}
	}
	return out, head, err
}

func newEnv(t *testing.T, files []gittest.File) *env {
	t.Helper()
	return newEnvWith(t, files, nil)
}

// newEnvWith is newEnv with a hook run on the new root before anything is
// created there.
func newEnvWith(t *testing.T, files []gittest.File, pre func(root string)) *env {
	t.Helper()
	return newEnvOpts(t, files, pre, false)
}

// newGitEnv is newEnv whose workspaces are git working trees.
func newGitEnv(t *testing.T, files []gittest.File) *env {
	t.Helper()
	return newEnvOpts(t, files, nil, true)
}

func newEnvOpts(t *testing.T, files []gittest.File, pre func(root string), git bool) *env {
	t.Helper()
	fuseUsable(t)
	e := &env{t: t, repo: gittest.NewRepo(t), root: t.TempDir(), log: testLog(t), git: git}
	if pre != nil {
		pre(e.root)
	}
	e.commit = e.repo.Commit(t, "main", "first", files)
	var err error
	if e.ms, err = mirror.Open(e.root, e.log); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ms.Add(context.Background(), "demo", e.repo.Dir); err != nil {
		t.Fatal(err)
	}
	if e.store, err = snapshot.NewStore(e.root, e.ms, e.log, snapshot.Options{MemBlobMax: 64 << 10}); err != nil {
		t.Fatal(err)
	}
	e.mount()
	return e
}

// mount creates an FS over e.root and mounts it on a fresh directory.
func (e *env) mount() {
	t := e.t
	t.Helper()
	opts := gitfs.Options{Root: e.root, Snapshots: e.store, Resolver: resolver{e.ms}, Log: e.log,
		Passthrough: os.Getenv("GITFS_PASSTHROUGH") != "0"}
	if e.git {
		opts.Git = func(repo string) (workspace.GitSource, error) {
			m, err := e.ms.Lookup(repo)
			return testGitSource{m: m, gate: &e.gitGate, fail: &e.gitFail}, err
		}
	}
	f, err := gitfs.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mnt, err := os.MkdirTemp("", "gitfs-mnt-")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(mnt); err != nil {
		os.Remove(mnt)
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount: %v", err)
		}
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	e.fs, e.mnt = f, mnt
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
		if mounted(mnt) {
			t.Errorf("%s still mounted after Unmount", mnt)
		}
		os.Remove(mnt)
	})
}

func mounted(mnt string) bool {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 1 && fields[1] == mnt {
			return true
		}
	}
	return false
}

// commitAndFetch commits files on main upstream and fetches it into the
// mirror, returning the commit.
func (e *env) commitAndFetch(t *testing.T, msg string, files []gittest.File) string {
	t.Helper()
	c := e.repo.Commit(t, "main", msg, files)
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) create(name string) string {
	e.t.Helper()
	return e.createAt(name, e.commit)
}

func (e *env) createAt(name, commit string) string {
	e.t.Helper()
	p, err := e.fs.Create(context.Background(), name, workspace.Spec{Repo: "demo", Rev: "main", Commit: commit})
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	if p != filepath.Join(e.mnt, name) {
		e.t.Fatalf("create returned %q", p)
	}
	return p
}

func sampleFiles() []gittest.File {
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	return []gittest.File{
		{Path: "README.md", Content: []byte("hello gitfs\n")},
		{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho run\n"), Mode: "100755"},
		{Path: "link", Content: []byte("README.md"), Mode: "120000"},
		{Path: "dirlink", Content: []byte("src"), Mode: "120000"},
		{Path: "src/a.go", Content: []byte("package a\n")},
		{Path: "src/b.go", Content: []byte("package b\n")},
		{Path: "src/deep/x/y/z.txt", Content: []byte("zzz\n")},
		{Path: "src/deep/other.txt", Content: []byte("other\n")},
		{Path: "data/big.bin", Content: big},
		{Path: "empty", Content: nil},
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
