//go:build linux

package workspace

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gitdir"
	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"golang.org/x/sys/unix"
)

// mirrorSource is the daemon's GitSource, over the fixture's mirror.
type mirrorSource struct{ m *mirror.Mirror }

func (s mirrorSource) URL(ctx context.Context) (string, error) { return s.m.URL(ctx) }
func (s mirrorSource) FSMonitor() string                       { return "" }
func (s mirrorSource) PinPacks(ctx context.Context, dir string) ([]string, error) {
	return s.m.PinPacks(ctx, dir)
}
func (s mirrorSource) Refs(ctx context.Context) ([]GitRef, string, error) {
	refs, head, err := s.m.RefList(ctx)
	out := make([]GitRef, len(refs))
	for i, r := range refs {
		out[i] = GitRef{Name: r.Name, ID: r.ID, Peeled: r.Peeled}
	}
	return out, head, err
}

// TestGitDir: making the git dir writes a clone's files; a crash before
// the index leaves it incomplete and making it again completes it without
// touching what the user may have changed; a HEAD the user moved makes it
// the user's.
func TestGitDir(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("ws", f.commit)
	src := f.gitSource(t)
	stat := GitIndexStat{Ino: func(string, snapshot.Entry) uint64 { return 5 }}
	if w.HasGitDir() {
		t.Fatal("a new workspace has a git dir before it is made")
	}
	if err := w.MakeGitDir(context.Background(), src, stat); err != nil {
		t.Fatal(err)
	}
	if !w.HasGitDir() {
		t.Fatal("no git dir after making it")
	}
	git := filepath.Join(Dir(f.root, "ws"), "upper", GitDirName)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(git, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if read("HEAD") != f.commit+"\n" || !strings.Contains(read("packed-refs"), " refs/remotes/origin/main\n") ||
		!strings.Contains(read("config"), "url = ") || !strings.Contains(read("logs/HEAD"), "checkout: moving from main to "+f.commit) {
		t.Errorf("git dir: HEAD %q packed-refs %q config %q", read("HEAD"), read("packed-refs"), read("config"))
	}
	packs, _ := filepath.Glob(filepath.Join(git, "objects", "pack", "pack-*.pack"))
	if len(packs) == 0 {
		t.Error("no packs linked")
	}
	if st, err := w.Status(); err != nil || len(st) != 0 {
		t.Errorf("status lists the git dir: %v %v", st, err)
	}
	// A crash before the index; the user had changed the config meanwhile.
	if err := os.Remove(filepath.Join(git, "index")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(git, "config"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if w.HasGitDir() {
		t.Error("a git dir without its index counts as complete")
	}
	if err := w.MakeGitDir(context.Background(), src, stat); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(git, "index")); err != nil || read("config") != "mine\n" {
		t.Errorf("completing the git dir: index %v, config %q", err, read("config"))
	}
	// The user moved HEAD and removed the index: it is theirs now.
	os.Remove(filepath.Join(git, "index"))
	if err := os.WriteFile(filepath.Join(git, "HEAD"), []byte("ref: refs/heads/topic\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !w.HasGitDir() {
		t.Error("a git dir whose HEAD the user moved counts as incomplete")
	}
	if !IsPinnedPack(".git/objects/pack/"+filepath.Base(packs[0]), mustStat(t, packs[0])) {
		t.Error("a linked pack is not recognized as pinned")
	}
}

func mustStat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// TestUpdateGitDirReusesIndex: the index ws update writes takes unchanged
// entries from the one it replaces (asking the snapshot only of the paths
// that changed) and is byte for byte the index made afresh; an entry the
// user changed in the index, or a moved .gitattributes, is made afresh.
func TestUpdateGitDirReusesIndex(t *testing.T) {
	f := newFixture(t, sample())
	ctx := context.Background()
	w := f.create("ws", f.commit)
	src := f.gitSource(t)
	asked := map[string]int{}
	stat := GitIndexStat{Dev: 42, Ino: func(p string, e snapshot.Entry) uint64 {
		asked[p]++
		return uint64(len(p)) + uint64(e.ID[0])<<8
	}}
	if err := w.MakeGitDir(ctx, src, stat); err != nil {
		t.Fatal(err)
	}
	indexPath := filepath.Join(Dir(f.root, "ws"), "upper", GitDirName, "index")
	fresh := func() []byte { return freshIndex(t, w, stat) }
	update := func(commit string) []byte {
		t.Helper()
		clear(asked)
		f.updateTo(t, w, src, stat, commit, KeepChanges)
		return mustRead(t, indexPath)
	}
	askedOnly := func(want ...string) {
		t.Helper()
		var got []string
		for p := range asked {
			got = append(got, p)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("the snapshot was asked about %v, want %v", got, want)
		}
	}

	second := f.upstream(t, gittest.File{Path: "src/added.txt", Content: []byte("added\n")})
	got := update(second)
	askedOnly("README.md", "src/added.txt")
	if want := fresh(); !bytes.Equal(got, want) {
		t.Errorf("the reused index differs from a fresh one (%d vs %d bytes)", len(got), len(want))
	}

	// The user staged other content for src/a.go: that entry is made
	// afresh (the workspace's commit is what the index records).
	prev, err := gitdir.ReadIndex(got)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prev {
		if prev[i].Path == "src/a.go" {
			prev[i].ID[0] ^= 1
			prev[i].Size = 99
		}
	}
	staged, err := gitdir.EncodeIndex(prev, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(indexPath, staged, 0o644); err != nil {
		t.Fatal(err)
	}
	third := f.repo.Commit(t, "main", "third", append(sample(), gittest.File{Path: "src/added.txt", Content: []byte("added again\n")}))
	if _, err := f.ms.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	got = update(third)
	askedOnly("README.md", "src/a.go", "src/added.txt")
	if want := fresh(); !bytes.Equal(got, want) {
		t.Errorf("the index after a staged change differs from a fresh one")
	}

	// A .gitattributes that moved may change every checked-out size.
	fourth := f.repo.Commit(t, "main", "fourth", append(sample(), gittest.File{Path: ".gitattributes", Content: []byte("*.txt text eol=crlf\n")}))
	if _, err := f.ms.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	got = update(fourth)
	askedOnly(".gitattributes", "README.md", "bin/run.sh", "link", "src/a.go", "src/deep/x.txt")
	if want := fresh(); !bytes.Equal(got, want) {
		t.Errorf("the index after .gitattributes moved differs from a fresh one")
	}

	// A daemon restarted: the mount's device is another, and the index
	// records it; unchanged entries are still reused, with the new device.
	stat.Dev = 43
	fifth := f.repo.Commit(t, "main", "fifth", append(sample(),
		gittest.File{Path: ".gitattributes", Content: []byte("*.txt text eol=crlf\n")}, gittest.File{Path: "src/fifth.txt", Content: []byte("5\n")}))
	if _, err := f.ms.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	got = update(fifth)
	if len(asked) > 2 {
		t.Errorf("after the device changed the snapshot was asked about %v: the index was not reused", asked)
	}
	if want := fresh(); !bytes.Equal(got, want) {
		t.Errorf("the index reused across a new device differs from a fresh one")
	}

	// The user planted a link at .git/index to a file they may not read
	// (here an index of the same tree, which would be reused if read):
	// it is not followed, and the link is replaced by a fresh index.
	secret := filepath.Join(t.TempDir(), "secret-index")
	planted := got
	if err := os.WriteFile(secret, planted, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(indexPath)
	if err := os.Symlink(secret, indexPath); err != nil {
		t.Fatal(err)
	}
	got = update(fourth) // the same commit: nothing moved, reuse would apply
	askedOnly(".gitattributes", "README.md", "bin/run.sh", "link", "src/a.go", "src/deep/x.txt")
	if st, err := os.Lstat(indexPath); err != nil || !st.Mode().IsRegular() {
		t.Errorf("the planted link at .git/index: %v, %v; want it replaced by a file", st, err)
	}
	if b, _ := os.ReadFile(secret); !bytes.Equal(b, planted) {
		t.Error("the link's target was written through")
	}
}

// BenchmarkWriteIndex: the index of a 20k-file tree written as ws update
// writes it, moving the workspace between two commits that differ in 1% of
// the files (the switch itself untimed).
func BenchmarkWriteIndex(b *testing.B) {
	files := gittest.Generate(20000, 3)
	f := newFixture(b, files)
	for i := 0; i < len(files); i += 100 {
		files[i].Content = append(slices.Clip(files[i].Content), "changed\n"...)
	}
	commits := []string{f.commit, f.repo.Commit(b, "main", "1% changed", files)}
	ctx := context.Background()
	if _, err := f.ms.Fetch(ctx, "demo"); err != nil {
		b.Fatal(err)
	}
	w := f.create("ws", f.commit)
	t0 := time.Unix(1700000000, 0)
	stat := GitIndexStat{Dev: 42, Base: t0, Ino: func(p string, e snapshot.Entry) uint64 { return uint64(len(p)) }, Time: func(string) time.Time { return t0 }}
	if err := w.MakeGitDir(ctx, f.gitSource(b), stat); err != nil {
		b.Fatal(err)
	}
	gfd, err := OpenDir(w.layer.upper, GitDirName)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(gfd)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		f.switchTo(b, w, commits[(i+1)%2], KeepChanges)
		b.StartTimer()
		if err := w.writeIndex(gfd, stat, true); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPathBefore: pathBefore and pathIs agree with comparing the joined
// path, byte-wise as the index sorts.
func TestPathBefore(t *testing.T) {
	parts := []string{"", "a", "b", "a-b", "a/b", "ab", "a.b", "z", "a0", "\xff", "a/"}
	for _, p := range parts {
		for _, prefix := range parts {
			for _, name := range parts {
				if name == "" {
					continue
				}
				want := join(prefix, name)
				if got := pathBefore(p, prefix, name); got != (p < want) {
					t.Errorf("pathBefore(%q, %q, %q) = %v; %q < %q is %v", p, prefix, name, got, p, want, p < want)
				}
				if got := pathIs(p, prefix, name); got != (p == want) {
					t.Errorf("pathIs(%q, %q, %q) = %v", p, prefix, name, got)
				}
			}
		}
	}
}

// TestIndexMemo: after one ws update, the next takes every directory in
// which nothing changed whole from the index it kept (asking nothing about
// their paths), and writes what a fresh index would hold; an index the
// user rewrote, or another time base, is not taken whole, and a new
// device is recorded in the entries taken.
func TestIndexMemo(t *testing.T) {
	tree := func(extra ...gittest.File) []gittest.File {
		files := append(sample(), gittest.File{Path: "doc/a.md", Content: []byte("a\n")},
			gittest.File{Path: "doc/b.md", Content: []byte("b\n")}, gittest.File{Path: "lib/x/y.go", Content: []byte("y\n")})
		for _, e := range extra {
			for i := range files {
				if files[i].Path == e.Path {
					files[i] = e
				}
			}
		}
		return files
	}
	f := newFixture(t, tree())
	ctx := context.Background()
	w := f.create("ws", f.commit)
	src := f.gitSource(t)
	asked := map[string]bool{}
	t0 := time.Unix(1700000000, 0)
	moved := map[string]time.Time{} // as an update that discards a local change moves its time
	stat := GitIndexStat{Dev: 42, Base: t0,
		Ino: func(p string, e snapshot.Entry) uint64 { return uint64(len(p)) + uint64(e.ID[0])<<8 },
		Time: func(p string) time.Time {
			asked[p] = true
			if t, ok := moved[p]; ok {
				return t
			}
			return t0
		}}
	if err := w.MakeGitDir(ctx, src, stat); err != nil {
		t.Fatal(err)
	}
	indexPath := filepath.Join(Dir(f.root, "ws"), "upper", GitDirName, "index")
	commit := func(extra ...gittest.File) string {
		t.Helper()
		c := f.repo.Commit(t, "main", "next", tree(extra...))
		if _, err := f.ms.Fetch(ctx, "demo"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	discard := KeepChanges
	update := func(commit string, wantAsked ...string) {
		t.Helper()
		clear(asked)
		f.updateTo(t, w, src, stat, commit, discard)
		var gotAsked []string
		for p := range asked {
			gotAsked = append(gotAsked, p)
		}
		got := mustRead(t, indexPath)
		if want := freshIndex(t, w, stat); !bytes.Equal(got, want) {
			t.Errorf("update to %.7s: the index differs from a fresh one (%d vs %d bytes)", commit, len(got), len(want))
		}
		slices.Sort(gotAsked)
		slices.Sort(wantAsked)
		if !slices.Equal(gotAsked, wantAsked) {
			t.Errorf("update to %.7s asked the times of %v, want %v", commit, gotAsked, wantAsked)
		}
	}
	all := []string{"README.md", "bin/run.sh", "doc/a.md", "doc/b.md", "lib/x/y.go", "link", "src/a.go", "src/deep/x.txt"}
	x2 := gittest.File{Path: "src/deep/x.txt", Content: []byte("x2\n")}
	update(commit(x2), all...) // from the file MakeGitDir wrote: no memo yet
	y2 := gittest.File{Path: "lib/x/y.go", Content: []byte("y2\n")}
	update(commit(x2, y2), "README.md", "link", "lib/x/y.go") // src, doc, bin taken whole

	// The user rewrote the index (git add, git status): it is read again.
	b := mustRead(t, indexPath)
	if err := os.WriteFile(indexPath, append(b[:len(b)-1:len(b)-1], b[len(b)-1]^1), 0o644); err != nil {
		t.Fatal(err)
	}
	a2 := gittest.File{Path: "doc/a.md", Content: []byte("a2\n")}
	update(commit(x2, y2, a2), all...)

	// A daemon restarted on another device: entries taken whole get it.
	stat.Dev = 43
	update(commit(y2, a2), "README.md", "link", "src/a.go", "src/deep/x.txt")

	// A local change discarded by the update (--reset): the file shows
	// the update's time, so its directory is not taken whole.
	dfd, name := copyUpPath(t, w, "doc/b.md")
	if err := os.WriteFile(procPath(dfd, name), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	moved["doc/b.md"] = t0.Add(time.Minute)
	discard = DiscardAll
	update(commit(a2, x2), "README.md", "link", "doc/a.md", "doc/b.md", "lib/x/y.go", "src/a.go", "src/deep/x.txt")
	discard = KeepChanges

	// Another time base: nothing is taken whole.
	t0 = t0.Add(time.Hour)
	stat.Base = t0
	update(commit(a2), all...)
}

// freshIndex is the index writeIndex makes for w with none to reuse; w's
// index file and memo are left as they were.
func freshIndex(t *testing.T, w *Workspace, stat GitIndexStat) []byte {
	t.Helper()
	gfd, err := OpenDir(w.layer.upper, GitDirName)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(gfd)
	indexPath := filepath.Join(w.dir, "upper", GitDirName, "index")
	keep, memo := mustRead(t, indexPath), w.index
	os.Remove(indexPath)
	if err := w.writeIndex(gfd, stat, false); err != nil {
		t.Fatal(err)
	}
	b := mustRead(t, indexPath)
	if err := os.WriteFile(indexPath, keep, 0o644); err != nil {
		t.Fatal(err)
	}
	w.index = memo
	return b
}

// updateTo switches w to commit and moves its git dir there, as ws update
// does.
func (f *fixture) updateTo(t *testing.T, w *Workspace, src GitSource, stat GitIndexStat, commit string, discard Discard) {
	t.Helper()
	f.switchTo(t, w, commit, discard)
	if _, err := w.UpdateGitDir(context.Background(), src, stat); err != nil {
		t.Fatal(err)
	}
}

// switchTo switches w to commit (Switch: the tree, before the git dir),
// waits for its record and returns what it did.
func (f *fixture) switchTo(t testing.TB, w *Workspace, commit string, discard Discard) Switched {
	t.Helper()
	snap, release, err := f.store.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := w.Switch(Spec{Repo: "demo", Commit: commit}, snap, release, discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Saved(); err != nil {
		t.Fatal(err)
	}
	sw.Release()
	return sw
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIndexMemoTouch: a changed path makes its directories stale, up to
// the root.
func TestIndexMemoTouch(t *testing.T) {
	var m indexMemo
	m.touch([]string{"a/b/c.txt", "a/d", "e"})
	want := map[string]bool{"a": true, "a/b": true, "a/b/c.txt": true, "a/d": true, "e": true}
	if !maps.Equal(m.stale, want) {
		t.Errorf("stale = %v, want %v", m.stale, want)
	}
}

// TestGitDirPending: a Switch marks the git dir pending until it follows
// (UpdateGitDir), so that a daemon killed in between finishes it at its
// next start.
func TestGitDirPending(t *testing.T) {
	f := newFixture(t, sample())
	ctx := context.Background()
	w, src, stat := f.createWithGitDir(t, "ws")
	if w.GitDirPending() {
		t.Error("a new git dir is pending")
	}
	f.switchTo(t, w, f.upstream(t), KeepChanges)
	if !w.GitDirPending() {
		t.Error("after a switch the git dir is not pending")
	}
	// As a daemon started again sees it, once this one's record is on
	// disk (Saved does not wait for the sync, and a load removes a
	// record's temp file).
	w.saving.wait()
	again, err := Load(ctx, f.opts, Dir(f.root, "ws"), f.store)
	if err != nil {
		t.Fatal(err)
	}
	if !again.GitDirPending() {
		t.Error("a loaded workspace does not see its git dir pending")
	}
	again.Close()
	if _, err := w.UpdateGitDir(ctx, src, stat); err != nil {
		t.Fatal(err)
	}
	if w.GitDirPending() {
		t.Error("after UpdateGitDir the git dir is still pending")
	}
}

// createWithGitDir creates workspace name at the fixture's commit with
// its git dir, and returns the source and stat the git dir was made with.
func (f *fixture) createWithGitDir(t *testing.T, name string) (*Workspace, GitSource, GitIndexStat) {
	t.Helper()
	w := f.create(name, f.commit)
	src := f.gitSource(t)
	stat := GitIndexStat{Dev: 42}
	if err := w.MakeGitDir(context.Background(), src, stat); err != nil {
		t.Fatal(err)
	}
	return w, src, stat
}

// gitSource is the mirror "demo" as the workspace's git source.
func (f *fixture) gitSource(t testing.TB) GitSource {
	t.Helper()
	m, err := f.ms.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	return mirrorSource{m}
}

// TestSwitchUnsaved: when meta.json cannot record a switch (it is written
// while the caller tells the kernel), Saved says so, the workspace shows
// the new commit until a restart, the git dir follows it but stays marked
// pending, and a restart shows the old commit and makes its git dir again;
// the next switch records itself; a load removes a record's temp file a
// crash left.
func TestSwitchUnsaved(t *testing.T) {
	f := newFixture(t, sample())
	ctx := context.Background()
	w, src, stat := f.createWithGitDir(t, "ws")
	second := f.upstream(t)
	snap, release, err := f.store.Get(ctx, "demo", second)
	if err != nil {
		t.Fatal(err)
	}
	saveMeta = func(string, Meta, func()) error { return errors.New("no space left on device") }
	t.Cleanup(func() { saveMeta = writeMeta })
	sw, err := w.Switch(Spec{Repo: "demo", Commit: second}, snap, release, KeepChanges)
	if err != nil {
		t.Fatal(err)
	}
	sw.Release()
	err = sw.Saved()
	if err == nil || !strings.Contains(err.Error(), "could not be saved") || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("Saved = %v, want the record's failure", err)
	}
	if w.Meta().Commit != second {
		t.Errorf("the workspace shows %s, want %s until a restart", w.Meta().Commit, second)
	}
	if _, err := w.UpdateGitDir(ctx, src, stat); err != nil {
		t.Fatal(err)
	}
	if !w.GitDirPending() {
		t.Error("the git dir of an unsaved switch is not marked pending")
	}
	saveMeta = writeMeta
	w.Close()
	// A crash in the middle of a record leaves its temp file.
	leftover := filepath.Join(Dir(f.root, "ws"), metaTempPrefix+"123")
	if err := os.WriteFile(leftover, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := Load(ctx, f.opts, Dir(f.root, "ws"), f.store)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.Meta().Commit; got != f.commit {
		t.Errorf("after a restart the workspace shows %s, want the recorded %s", got, f.commit)
	}
	if !again.GitDirPending() {
		t.Error("after a restart the git dir of the recorded commit is not to be made again")
	}
	if _, err := os.Lstat(leftover); !os.IsNotExist(err) {
		t.Errorf("a record's temp file left by a crash is still there after a load: %v", err)
	}
	f.switchTo(t, again, second, KeepChanges)
	again.Close()
	third, err := Load(ctx, f.opts, Dir(f.root, "ws"), f.store)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if got := third.Meta().Commit; got != second {
		t.Errorf("the next switch was not recorded: %s", got)
	}
}

// TestSwitchSavedBeforeSync: Saved answers once the record's bytes are
// written, without waiting for them to be synced (a journal commit); a
// failure after that, which Saved cannot report, comes from UpdateGitDir,
// whose git dir stays marked pending.
func TestSwitchSavedBeforeSync(t *testing.T) {
	for _, tc := range []struct {
		name    string
		syncErr error // what the sync after the write returns
	}{
		{"synced", nil},
		{"sync fails", errors.New("input/output error")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, sample())
			ctx := context.Background()
			w, src, stat := f.createWithGitDir(t, "ws")
			defer w.Close()
			second := f.upstream(t)
			snap, release, err := f.store.Get(ctx, "demo", second)
			if err != nil {
				t.Fatal(err)
			}
			syncing := make(chan struct{})
			saveMeta = func(dir string, m Meta, written func()) error {
				written()
				<-syncing // the journal commit, slow
				if tc.syncErr != nil {
					return tc.syncErr
				}
				return writeMeta(dir, m, nil)
			}
			t.Cleanup(func() { saveMeta = writeMeta })
			sw, err := w.Switch(Spec{Repo: "demo", Commit: second}, snap, release, KeepChanges)
			if err != nil {
				t.Fatal(err)
			}
			sw.Release()
			saved := make(chan error, 1)
			go func() { saved <- sw.Saved() }()
			select {
			case err := <-saved:
				if err != nil {
					t.Fatalf("Saved: %v", err)
				}
			case <-time.After(10 * time.Second):
				close(syncing)
				t.Fatal("Saved waited for the record's sync")
			}
			close(syncing)
			_, err = w.UpdateGitDir(ctx, src, stat)
			if tc.syncErr == nil {
				if err != nil || w.GitDirPending() {
					t.Fatalf("UpdateGitDir: %v, pending %v; want done", err, w.GitDirPending())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "could not be saved") || !strings.Contains(err.Error(), "input/output") {
				t.Fatalf("UpdateGitDir = %v, want the record's late failure", err)
			}
			if !w.GitDirPending() {
				t.Error("the git dir of an unsaved switch is not marked pending")
			}
		})
	}
}
