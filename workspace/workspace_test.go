//go:build linux

package workspace

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// fixture is a root with mirror "demo" whose main branch holds files, and
// a snapshot store: everything a workspace needs, no mount.
type fixture struct {
	t      testing.TB
	root   string
	repo   *gittest.Repo
	ms     *mirror.Set
	store  *snapshot.Store
	opts   Options
	commit string
}

func newFixture(t testing.TB, files []gittest.File) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir(), repo: gittest.NewRepo(t)}
	f.commit = f.repo.Commit(t, "main", "first", files)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	if f.ms, err = mirror.Open(f.root, log); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ms.Add(context.Background(), "demo", f.repo.Dir); err != nil {
		t.Fatal(err)
	}
	if f.store, err = snapshot.NewStore(f.root, f.ms, log, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(f.root, "workspaces"), 0o700); err != nil {
		t.Fatal(err)
	}
	// trusted.* records work on every file type but need root; user.*
	// ones do not work on symlinks (their copy-ups then lose the origin).
	f.opts = Options{Root: f.root, XattrPrefix: "user.gitfs."}
	if os.Geteuid() == 0 {
		f.opts = Options{Root: f.root, Chown: true, XattrPrefix: "trusted.gitfs."}
	}
	return f
}

// create makes workspace name at commit.
func (f *fixture) create(name, commit string) *Workspace {
	f.t.Helper()
	snap, release, err := f.store.Get(context.Background(), "demo", commit)
	if err != nil {
		f.t.Fatal(err)
	}
	w, err := Create(f.opts, name, Spec{Repo: "demo", Rev: "main", Commit: commit, UID: 0, GID: 0, Mode: 0o750}, snap, release)
	if err != nil {
		release()
		f.t.Fatal(err)
	}
	f.t.Cleanup(w.Close)
	return w
}

func (f *fixture) load(name string) *Workspace {
	f.t.Helper()
	w, err := Load(context.Background(), f.opts, Dir(f.root, name), f.store)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(w.Close)
	return w
}

func sample() []gittest.File {
	return []gittest.File{
		{Path: "README.md", Content: []byte("hello\n")},
		{Path: "src/a.go", Content: []byte("package a\n")},
		{Path: "src/deep/x.txt", Content: []byte("x\n")},
		{Path: "bin/run.sh", Content: []byte("#!/bin/sh\n"), Mode: "100755"},
		{Path: "link", Content: []byte("README.md"), Mode: "120000"},
	}
}

// TestCreateLoadRemove: a workspace is a private directory with its meta;
// it comes back after a restart and goes away in one rename.
func TestCreateLoadRemove(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("job1", f.commit)
	dir := Dir(f.root, "job1")
	for sub, mode := range map[string]os.FileMode{"": 0o700, "work": 0o700, "upper": 0o750} {
		st, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %v", filepath.Join("job1", sub), st.Mode(), err, mode)
		}
	}
	m := w.Meta()
	if m.Name != "job1" || m.Commit != f.commit || m.Repo != "demo" || m.ID == 0 {
		t.Errorf("meta %+v", m)
	}
	w.Close()
	again := f.load("job1")
	if got := again.Meta(); got != m {
		t.Errorf("loaded meta %+v, want %+v", got, m)
	}
	keep, err := Commits(f.root)
	if err != nil || !keep[f.commit] || len(keep) != 1 {
		t.Errorf("Commits: %v %v", keep, err)
	}
	trash, err := again.Remove()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove: %v", err)
	}
	os.RemoveAll(trash)
	if names, _ := Names(f.root); len(names) != 0 {
		t.Errorf("names after remove: %v", names)
	}
}

// TestCreateRefuses: bad names, unresolved commits, existing workspaces.
func TestCreateRefuses(t *testing.T) {
	f := newFixture(t, sample())
	f.create("taken", f.commit)
	snap, release, err := f.store.Get(context.Background(), "demo", f.commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, c := range []struct {
		name string
		spec Spec
		want error
	}{
		{"../x", Spec{Repo: "demo", Commit: f.commit}, nil},
		{"-rf", Spec{Repo: "demo", Commit: f.commit}, nil},
		{".hidden", Spec{Repo: "demo", Commit: f.commit}, nil},
		{"a/b", Spec{Repo: "demo", Commit: f.commit}, nil},
		{"ok", Spec{Repo: "demo", Commit: "main"}, nil},
		{"ok", Spec{Repo: "demo", Commit: strings.Repeat("1", 40)}, nil},
		{"ok", Spec{Commit: f.commit}, nil},
		{"taken", Spec{Repo: "demo", Commit: f.commit}, ErrExists},
	} {
		_, err := Create(f.opts, c.name, c.spec, snap, release)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Create(%q, %+v): %v, want an error (%v)", c.name, c.spec, err, c.want)
		}
	}
	names, _ := Names(f.root)
	if len(names) != 1 || names[0] != "taken" {
		t.Errorf("workspaces on disk: %v", names)
	}
	entries, _ := os.ReadDir(filepath.Join(f.root, "workspaces"))
	if len(entries) != 1 {
		t.Errorf("leftovers: %v", entries)
	}
}

// TestInterruptedStepsLeaveOldState: a step a crash cut short leaves its
// temp entry in work/ and the upper layer as it was; opening the workspace
// again removes the leftovers, and CleanStale removes half-made creates.
func TestInterruptedStepsLeaveOldState(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("ws", f.commit)
	before, err := w.Status()
	if err != nil {
		t.Fatal(err)
	}
	dir := Dir(f.root, "ws")
	// A copy-up that died before its rename, and a whiteout that did.
	if err := os.WriteFile(filepath.Join(dir, "work", "t1-1"), []byte("half a copy"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(dir, "work", "t1-2"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "work", "t1-3"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A create that died before its rename.
	if err := os.Mkdir(filepath.Join(f.root, "workspaces", ".other.tmp-123"), 0o700); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w = f.load("ws")
	if names, _ := ReadDirNames(w.layer.work); len(names) != 0 {
		t.Errorf("work/ after reopening: %v", names)
	}
	after, err := w.Status()
	if err != nil || len(after) != len(before) {
		t.Errorf("status changed by an interrupted step: %v -> %v (%v)", before, after, err)
	}
	CleanStale(f.root)
	entries, _ := os.ReadDir(filepath.Join(f.root, "workspaces"))
	if len(entries) != 1 || entries[0].Name() != "ws" {
		t.Errorf("after CleanStale: %v", entries)
	}
}

// TestStepsAreAtomic: a step that cannot complete leaves nothing behind,
// neither in the upper layer nor in work/.
func TestStepsAreAtomic(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("ws", f.commit)
	l := w.Layer()
	readme := mustLookup(t, w, "README.md")
	// Copy-up onto an existing name: refused, no temp left.
	if err := os.WriteFile(filepath.Join(Dir(f.root, "ws"), "upper", "README.md"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := l.CopyUp(w.Snapshot(), l.Upper(), "README.md", readme, "README.md", 42, true, w.Snapshot().CommitTime())
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("copy-up onto an existing entry: %v, want EEXIST", err)
	}
	if b, _ := os.ReadFile(filepath.Join(Dir(f.root, "ws"), "upper", "README.md")); string(b) != "mine" {
		t.Errorf("copy-up replaced an entry: %q", b)
	}
	// Place where a real entry is: EEXIST, the maker never runs.
	ran := false
	if err := l.Place(l.Upper(), "README.md", false, func(int, string) error { ran = true; return nil }); !errors.Is(err, unix.EEXIST) || ran {
		t.Errorf("place over an entry: %v (maker ran: %v)", err, ran)
	}
	// Place over a whiteout whose maker fails: the whiteout stays.
	if err := l.Whiteout(l.Upper(), "gone", false); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := l.Place(l.Upper(), "gone", false, func(dfd int, nm string) error {
		if err := unix.Mknodat(dfd, nm, unix.S_IFIFO|0o600, 0); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("place with a failing maker: %v", err)
	}
	if st, err := Lstat(l.Upper(), "gone"); err != nil || !IsWhiteout(&st) {
		t.Errorf("whiteout after a failed place: %v %v", st.Mode, err)
	}
	// Whiteout replacing a file happens in one rename.
	if err := l.Whiteout(l.Upper(), "README.md", true); err != nil {
		t.Fatal(err)
	}
	if st, err := Lstat(l.Upper(), "README.md"); err != nil || !IsWhiteout(&st) {
		t.Errorf("README.md after whiteout: %v", err)
	}
	if names, _ := ReadDirNames(l.work); len(names) > 1 {
		// At most the failed place's own temp, which the next open removes.
		t.Errorf("work/ holds %v", names)
	}
}

func mustLookup(t *testing.T, w *Workspace, p string) snapshot.Entry {
	t.Helper()
	e, err := w.Snapshot().Lookup(p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// copyUpPath copies up every directory on the way to p and p itself, and
// returns a descriptor of p's upper directory (closed at cleanup).
func copyUpPath(t *testing.T, w *Workspace, p string) (int, string) {
	t.Helper()
	l := w.Layer()
	dfd := l.Upper()
	parts := strings.Split(p, "/")
	for i, comp := range parts {
		sub := strings.Join(parts[:i+1], "/")
		e := mustLookup(t, w, sub)
		if _, err := Lstat(dfd, comp); err != nil {
			if err := l.CopyUp(w.Snapshot(), dfd, comp, e, sub, uint64(100+i), true, w.Snapshot().CommitTime()); err != nil {
				t.Fatalf("copy-up %s: %v", sub, err)
			}
		}
		if i == len(parts)-1 {
			return dfd, comp
		}
		fd, err := OpenDir(dfd, comp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		dfd = fd
	}
	return dfd, ""
}

// TestStatus: each kind of change shows as git status --short would.
func TestStatus(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("ws", f.commit)
	everyChange(t, w)
	got, err := w.Status()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range got {
		s := string(c.Op) + " " + c.Path
		if c.From != "" {
			s += " <- " + c.From
		}
		lines = append(lines, s)
	}
	want := []string{"D bin/run.sh", "M README.md", "R moved <- src/deep", "A new.txt"}
	sort.Strings(lines)
	sort.Strings(want)
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("status:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// everyChange makes one local change of each kind in w (sample's tree):
// a copy-up alone, a modification, an addition, a deletion, a renamed
// directory.
func everyChange(t *testing.T, w *Workspace) {
	t.Helper()
	l := w.Layer()
	// A copy-up alone changes nothing.
	copyUpPath(t, w, "src/a.go")
	// Modified.
	dfd, name := copyUpPath(t, w, "README.md")
	if err := os.WriteFile(procPath(dfd, name), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Added.
	if err := l.Place(l.Upper(), "new.txt", false, func(dfd int, nm string) error {
		fd, err := unix.Openat(dfd, nm, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Deleted: a whiteout over a lower file.
	copyUpPath(t, w, "bin")
	binfd, err := OpenDir(l.Upper(), "bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(binfd) })
	if err := l.Whiteout(binfd, "run.sh", false); err != nil {
		t.Fatal(err)
	}
	// Renamed directory: src/deep -> moved.
	sfd, err := OpenDir(l.Upper(), "src")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sfd) })
	deep := mustLookup(t, w, "src/deep")
	if err := l.CopyUp(w.Snapshot(), sfd, "deep", deep, "src/deep", 7, true, w.Snapshot().CommitTime()); err != nil {
		t.Fatal(err)
	}
	if err := l.MarkMoved(sfd, "deep", "src/deep", true); err != nil {
		t.Fatal(err)
	}
	if err := l.Move(sfd, "deep", l.Upper(), "moved", true, true); err != nil {
		t.Fatal(err)
	}
}

// upstream commits sample's tree with README.md changed, and extra files,
// on main and fetches it, returning the commit.
func (f *fixture) upstream(t *testing.T, extra ...gittest.File) string {
	t.Helper()
	files := sample()
	files[0].Content = []byte("upstream\n") // README.md
	c := f.repo.Commit(t, "main", "second", append(files, extra...))
	if _, err := f.ms.Fetch(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSwitchConflicts: an update keeps local changes to paths that did not
// change upstream, refuses those that did (naming them) unless told to
// discard them, and changes nothing when it refuses.
func TestSwitchConflicts(t *testing.T) {
	f := newFixture(t, sample())
	second := f.upstream(t, gittest.File{Path: "added.txt", Content: []byte("new upstream\n")})
	ctx := context.Background()
	w := f.create("ws", f.commit)
	dfd, name := copyUpPath(t, w, "README.md")
	if err := os.WriteFile(procPath(dfd, name), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sfd, sname := copyUpPath(t, w, "src/a.go")
	if err := os.WriteFile(procPath(sfd, sname), []byte("package a // local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, release, err := f.store.Get(ctx, "demo", second)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Repo: "demo", Commit: second}
	_, err = w.Switch(spec, snap, release, KeepChanges)
	var ce *ConflictError
	if !errors.As(err, &ce) || strings.Join(ce.Paths, ",") != "README.md" {
		t.Fatalf("switch with a conflicting change: %v, want a conflict on README.md", err)
	}
	if w.Meta().Commit != f.commit || w.Snapshot().Commit() != f.commit {
		t.Errorf("a refused switch moved the workspace to %s", w.Meta().Commit)
	}
	sw, err := w.Switch(spec, snap, release, DiscardConflicting)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Saved(); err != nil {
		t.Fatal(err)
	}
	sw.Release()
	sort.Strings(sw.Changed)
	if strings.Join(sw.Changed, ",") != "README.md,README.md,added.txt" {
		t.Errorf("changed paths %v", sw.Changed)
	}
	if w.Meta().Commit != second || w.Snapshot().Commit() != second {
		t.Errorf("after switch: meta %s, snapshot %s", w.Meta().Commit, w.Snapshot().Commit())
	}
	st, err := w.Status()
	if err != nil || len(st) != 1 || st[0].Path != "src/a.go" || st[0].Op != 'M' {
		t.Errorf("status after switch: %v %v; want only the kept src/a.go change", st, err)
	}
	w.Close()
	if got := f.load("ws").Meta().Commit; got != second {
		t.Errorf("switch not durable: reloaded at %s", got)
	}
}

// TestSwitchReset: DiscardAll drops every local change, wherever it is
// and whether or not it conflicts, and the copied-up directories that only
// held them, leaving the workspace as a new one at the commit; the paths
// it dropped are reported for invalidation.
func TestSwitchReset(t *testing.T) {
	f := newFixture(t, sample())
	second := f.upstream(t)
	w := f.create("ws", f.commit)
	everyChange(t, w)
	sw := f.switchTo(t, w, second, DiscardAll)
	for _, p := range []string{"README.md", "new.txt", "bin/run.sh", "moved", "src/a.go"} {
		if !slices.Contains(sw.Changed, p) {
			t.Errorf("dropped %s not reported in %v", p, sw.Changed)
		}
	}
	for _, d := range []string{"bin", "src"} {
		if !slices.Contains(sw.Dirs, d) {
			t.Errorf("directory %s that only held changes not reported in %v", d, sw.Dirs)
		}
	}
	if st, err := w.Status(); err != nil || len(st) != 0 {
		t.Errorf("status after reset: %v %v; want none", st, err)
	}
	names, err := ReadDirNames(w.Layer().Upper())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if n != GitDirName {
			t.Errorf("upper layer still holds %s after reset", n)
		}
	}
}

// TestExportPlanApplies: the plan, applied to a checkout of the commit,
// gives the workspace's content, with modes.
func TestExportPlanApplies(t *testing.T) {
	f := newFixture(t, sample())
	w := f.create("ws", f.commit)
	l := w.Layer()
	dfd, name := copyUpPath(t, w, "README.md")
	if err := os.WriteFile(procPath(dfd, name), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fchmodat(dfd, name, 0o600, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Whiteout(l.Upper(), "link", false); err != nil {
		t.Fatal(err)
	}
	plan, err := w.PlanExport()
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if plan.Commit != f.commit {
		t.Errorf("plan of %s", plan.Commit)
	}
	out := t.TempDir()
	if b, err := exec.Command("sh", "-c", "git -C "+f.repo.Dir+" archive "+f.commit+" | tar -x -C "+out).CombinedOutput(); err != nil {
		t.Fatalf("archive: %v %s", err, b)
	}
	r, err := os.OpenRoot(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := plan.Apply(r); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "README.md")); string(b) != "changed\n" {
		t.Errorf("README.md: %q", b)
	}
	if st, err := os.Stat(filepath.Join(out, "README.md")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("README.md mode %v %v", st.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(out, "link")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted link still exported: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "src", "a.go")); err != nil {
		t.Errorf("unchanged file lost: %v", err)
	}
}
