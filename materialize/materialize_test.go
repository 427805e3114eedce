package materialize

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
)

// fakeSrc is an in-memory tree: hostile trees need no repository.
type fakeSrc struct {
	root  snapshot.ID
	trees map[snapshot.ID][]snapshot.Entry
	blobs map[snapshot.ID][]byte
	n     int
}

func newFake() *fakeSrc {
	return &fakeSrc{trees: map[snapshot.ID][]snapshot.Entry{}, blobs: map[snapshot.ID][]byte{}}
}

func (f *fakeSrc) id() snapshot.ID {
	f.n++
	return snapshot.ID(sha1.Sum([]byte(fmt.Sprint(f.n))))
}

func (f *fakeSrc) blob(content string) snapshot.ID {
	id := f.id()
	f.blobs[id] = []byte(content)
	return id
}

func (f *fakeSrc) tree(entries ...snapshot.Entry) snapshot.ID {
	id := f.id()
	f.trees[id] = entries
	return id
}

func (f *fakeSrc) file(name, content string) snapshot.Entry {
	return snapshot.Entry{Name: name, Kind: snapshot.File, ID: f.blob(content)}
}

func (f *fakeSrc) exec(name, content string) snapshot.Entry {
	return snapshot.Entry{Name: name, Kind: snapshot.Executable, ID: f.blob(content)}
}

func (f *fakeSrc) link(name, target string) snapshot.Entry {
	return snapshot.Entry{Name: name, Kind: snapshot.Symlink, ID: f.blob(target)}
}

func (f *fakeSrc) dir(name string, entries ...snapshot.Entry) snapshot.Entry {
	return snapshot.Entry{Name: name, Kind: snapshot.Dir, ID: f.tree(entries...)}
}

func (f *fakeSrc) withRoot(entries ...snapshot.Entry) *fakeSrc {
	f.root = f.tree(entries...)
	return f
}

func (f *fakeSrc) Root() snapshot.ID { return f.root }
func (f *fakeSrc) Tree(id snapshot.ID) ([]snapshot.Entry, error) {
	e, ok := f.trees[id]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id, snapshot.ErrNotExist)
	}
	return e, nil
}
func (f *fakeSrc) Stream(id snapshot.ID) (io.ReadCloser, int64, error) {
	b, ok := f.blobs[id]
	if !ok {
		return nil, 0, fmt.Errorf("blob %s: %w", id, snapshot.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}
func (f *fakeSrc) ReadLink(id snapshot.ID) (string, error) {
	b, ok := f.blobs[id]
	if !ok {
		return "", fmt.Errorf("blob %s: %w", id, snapshot.ErrNotExist)
	}
	return string(b), nil
}
func (f *fakeSrc) Commit() string        { return strings.Repeat("ab", 20) }
func (f *fakeSrc) CommitTime() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) }
func (f *fakeSrc) ObjectsDir() string    { return "/nonexistent/objects" }
func (f *fakeSrc) BuiltFrom(string) bool { return true }

// readTree reads dir and replaces hashes by contents, for readable diffs.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link:" + target
		case info.IsDir():
			out[rel] = "dir"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			kind := "file:"
			if info.Mode()&0o100 != 0 {
				kind = "exec:"
			}
			out[rel] = kind + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffMaps(want, got map[string]string) []string {
	var d []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			d = append(d, "missing "+k)
		} else if g != v {
			d = append(d, fmt.Sprintf("%s: got %.40q want %.40q", k, g, v))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			d = append(d, "extra "+k)
		}
	}
	return d
}

func TestCheckoutWritesTree(t *testing.T) {
	f := newFake()
	big := strings.Repeat("0123456789", 100_000) // larger than a worker's buffer
	gitlink := snapshot.Entry{Name: "module", Kind: snapshot.Gitlink, ID: f.id()}
	src := f.withRoot(
		f.file("README", "hello\n"),
		f.file("empty", ""),
		f.exec("run.sh", "#!/bin/sh\n"),
		f.link("link", "README"),
		f.link("abs", "/etc/passwd"), // pointing anywhere is allowed, never followed
		f.dir("a", f.dir("b", f.file("c.txt", "c"), f.file("big", big)), f.link("up", "../README")),
		f.dir("unicodé", f.file("файл.txt", "ü")),
		f.dir(".github", f.file("x", "y")),
		f.file(".gitignore", "*.o\n"),
		gitlink,
	)
	want := map[string]string{
		"README": "file:hello\n", "empty": "file:", "run.sh": "exec:#!/bin/sh\n",
		"link": "link:README", "abs": "link:/etc/passwd",
		"a": "dir", "a/b": "dir", "a/b/c.txt": "file:c", "a/b/big": "file:" + big, "a/up": "link:../README",
		"unicodé": "dir", "unicodé/файл.txt": "file:ü",
		".github": "dir", ".github/x": "file:y", ".gitignore": "file:*.o\n",
		"module": "dir",
	}
	for _, workers := range []int{1, 2, 7} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			stats, err := checkout(context.Background(), src, out, Options{Workers: workers}, defaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if d := diffMaps(want, readTree(t, out)); len(d) > 0 {
				t.Fatalf("tree differs: %v", d)
			}
			if stats.Files != 8 || stats.Symlinks != 3 || stats.Dirs != 5 || stats.Bytes != int64(6+0+10+1+len(big)+len("ü")+1+4) {
				t.Errorf("stats = %+v", stats)
			}
			fi, err := os.Lstat(filepath.Join(out, "a/b/c.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if !fi.ModTime().Equal(src.CommitTime()) {
				t.Errorf("mtime = %v, want the commit time %v", fi.ModTime(), src.CommitTime())
			}
			if left, _ := filepath.Glob(out + ".gitfs-tmp-*"); len(left) > 0 {
				t.Errorf("temp dirs left: %v", left)
			}
		})
	}
}

func TestCheckoutEmptyTree(t *testing.T) {
	src := newFake().withRoot()
	out := filepath.Join(t.TempDir(), "out")
	if _, err := checkout(context.Background(), src, out, Options{}, defaultLimits); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, out); len(got) != 0 {
		t.Fatalf("empty tree gave %v", got)
	}
}

// TestRefusesHostileTrees: every unsafe tree is refused with a
// *RefusedError naming the path, DIR stays absent, nothing is left beside
// it, and nothing outside is touched.
func TestRefusesHostileTrees(t *testing.T) {
	deep := func(f *fakeSrc, levels int) *fakeSrc {
		e := f.file("bottom", "x")
		for i := 0; i < levels; i++ {
			e = f.dir("d", e)
		}
		return f.withRoot(e)
	}
	long := strings.Repeat("n", 255)
	tests := []struct {
		name     string
		src      func(f *fakeSrc) *fakeSrc
		lim      limits
		wantPath string
		wantRule string
	}{
		{"dotdot", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir("..", f.file("pwned", "x"))) }, defaultLimits, "..", ruleDot},
		{"dot", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file(".", "x")) }, defaultLimits, ".", ruleDot},
		{"dotgit", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".git", f.file("config", "x"))) }, defaultLimits, ".git", ruleDotGit},
		{"dotgit upper", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".GIT", f.file("config", "x"))) }, defaultLimits, ".GIT", ruleDotGit},
		{"dotgit nested", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir("sub", f.dir(".Git", f.file("hooks", "x")))) }, defaultLimits, "sub/.Git", ruleDotGit},
		{"ntfs short name", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir("git~1", f.file("config", "x"))) }, defaultLimits, "git~1", ruleDotGit},
		{"ntfs short name upper", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file("GIT~1", "x")) }, defaultLimits, "GIT~1", ruleDotGit},
		{"ntfs trailing space", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".git ", f.file("config", "x"))) }, defaultLimits, ".git ", ruleDotGit},
		{"ntfs trailing dots", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".git. .", f.file("config", "x"))) }, defaultLimits, ".git. .", ruleDotGit},
		{"ntfs stream", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".git::$INDEX_ALLOCATION", f.file("config", "x"))) }, defaultLimits, ".git::$INDEX_ALLOCATION", ruleDotGit},
		{"ntfs backslash", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file(`a\.git`, "x")) }, defaultLimits, `a\.git`, ruleDotGit},
		{"hfs zero width", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir(".g\u200cit", f.file("config", "x"))) }, defaultLimits, ".g\u200cit", ruleDotGit},
		{"hfs bom", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.dir("\ufeff.GIT", f.file("config", "x"))) }, defaultLimits, "\ufeff.GIT", ruleDotGit},
		{"slash", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file("a/pwned", "x")) }, defaultLimits, "a/pwned", ruleSlash},
		{"nul", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file("a\x00b", "x")) }, defaultLimits, "a\x00b", ruleNUL},
		{"empty", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file("", "x")) }, defaultLimits, "", ruleEmpty},
		{"name max", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file(long+"x", "x")) }, defaultLimits, long + "x", ruleNameMax},
		{"symlink out plus blob under it", func(f *fakeSrc) *fakeSrc {
			return f.withRoot(f.link("a", "/tmp/outside"), f.file("a/pwned", "x"))
		}, defaultLimits, "a/pwned", ruleSlash},
		{"symlink and dir of one name", func(f *fakeSrc) *fakeSrc {
			return f.withRoot(f.link("a", "../../.."), f.dir("a", f.file("pwned", "x")))
		}, defaultLimits, "a", ruleDuplicate},
		{"dir then symlink of one name", func(f *fakeSrc) *fakeSrc {
			return f.withRoot(f.dir("a", f.file("pwned", "x")), f.link("a", "/tmp/outside"))
		}, defaultLimits, "a", ruleDuplicate},
		{"duplicate files", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.file("x", "1"), f.file("x", "2")) }, defaultLimits, "x", ruleDuplicate},
		{"symlinked gitmodules", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.link(".gitmodules", "/etc/passwd")) }, defaultLimits, ".gitmodules", ruleGitmodules},
		{"empty link target", func(f *fakeSrc) *fakeSrc { return f.withRoot(f.link("l", "")) }, defaultLimits, "l", ruleLinkEmpty},
		{"depth 4096", func(f *fakeSrc) *fakeSrc { return deep(f, 4096) }, defaultLimits, strings.Repeat("d/", 1024) + "d", "deeper than 1024"},
		{"depth over a low limit", func(f *fakeSrc) *fakeSrc { return deep(f, 10) }, limits{maxDepth: 5, maxEntries: 100}, "d/d/d/d/d/d", "deeper than 5"},
		{"entry bomb", func(f *fakeSrc) *fakeSrc {
			// 10 trees of 10 entries each reusing one subtree: 10^3 paths.
			leaf := f.tree(f.file("0", "x"), f.file("1", "x"), f.file("2", "x"), f.file("3", "x"), f.file("4", "x"),
				f.file("5", "x"), f.file("6", "x"), f.file("7", "x"), f.file("8", "x"), f.file("9", "x"))
			var mid []snapshot.Entry
			for i := 0; i < 10; i++ {
				mid = append(mid, snapshot.Entry{Name: fmt.Sprint(i), Kind: snapshot.Dir, ID: leaf})
			}
			m := f.tree(mid...)
			var top []snapshot.Entry
			for i := 0; i < 10; i++ {
				top = append(top, snapshot.Entry{Name: fmt.Sprint(i), Kind: snapshot.Dir, ID: m})
			}
			return f.withRoot(top...)
		}, limits{maxDepth: 100, maxEntries: 500}, "", "more than 500 entries"},
		{"path max", func(f *fakeSrc) *fakeSrc {
			e := f.file(long, "x")
			for i := 0; i < 16; i++ {
				e = f.dir(long, e)
			}
			return f.withRoot(e)
		}, defaultLimits, "", ruleFirstWords(rulePathMax)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			canary := filepath.Join(base, "canary")
			if err := os.MkdirAll(canary, 0o755); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(base, "out")
			_, err := checkout(context.Background(), tc.src(newFake()), out, Options{Workers: 2}, tc.lim)
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("not refused: err = %v", err)
			}
			if tc.wantPath != "" && re.Path != tc.wantPath {
				t.Errorf("refused path %q, want %q", re.Path, tc.wantPath)
			}
			if !strings.Contains(re.Rule, tc.wantRule) {
				t.Errorf("rule %q, want it to say %q", re.Rule, tc.wantRule)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", re.Path)) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line naming the path: %q", err)
			}
			entries, _ := os.ReadDir(base)
			if len(entries) != 1 || entries[0].Name() != "canary" {
				t.Errorf("left beside the target: %v", entries)
			}
			if c, _ := os.ReadDir(canary); len(c) != 0 {
				t.Errorf("canary touched: %v", c)
			}
			if _, err := os.Stat("/tmp/outside/pwned"); err == nil {
				t.Errorf("/tmp/outside/pwned exists")
			}
		})
	}
}

func ruleFirstWords(rule string) string { return strings.Join(strings.Fields(rule)[:3], " ") }

// refusingSrc is a source whose Tree refuses one tree as a snapshot does
// when it decodes a hostile tree (it knows the tree, not its path).
type refusingSrc struct {
	*fakeSrc
	bad snapshot.ID
}

func (r refusingSrc) Tree(id snapshot.ID) ([]snapshot.Entry, error) {
	if id == r.bad {
		return nil, &snapshot.RefusedError{Path: ".git", Rule: snapshot.RuleDotGit, Tree: id}
	}
	return r.fakeSrc.Tree(id)
}

// TestRefusalFromSnapshotNamesPath: a tree the snapshot refuses while the
// plan reads it is reported as the plan's own refusals are: at its full
// path, nothing written.
func TestRefusalFromSnapshotNamesPath(t *testing.T) {
	f := newFake()
	sub := f.dir("sub", f.file("ok", "x"))
	src := refusingSrc{f.withRoot(f.dir("a", sub)), sub.ID}
	out := filepath.Join(t.TempDir(), "out")
	_, err := checkout(context.Background(), src, out, Options{}, defaultLimits)
	var re *RefusedError
	if !errors.As(err, &re) || re.Path != "a/sub/.git" || re.Rule != ruleDotGit {
		t.Fatalf("err = %v, want a refusal of a/sub/.git", err)
	}
	if !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("error does not say nothing was written: %v", err)
	}
	if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("target exists after a refusal: %v", err)
	}
}

func TestTargetMustBeAbsentOrEmpty(t *testing.T) {
	src := newFake()
	src = src.withRoot(src.file("a", "1"))
	base := t.TempDir()

	full := filepath.Join(base, "full")
	os.MkdirAll(full, 0o755)
	os.WriteFile(filepath.Join(full, "mine"), []byte("keep"), 0o644)
	if _, err := checkout(context.Background(), src, full, Options{}, defaultLimits); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty target: err = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "mine")); string(b) != "keep" {
		t.Errorf("non-empty target was changed")
	}

	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := checkout(context.Background(), src, file, Options{}, defaultLimits); err == nil {
		t.Errorf("file target accepted")
	}

	link := filepath.Join(base, "link")
	os.MkdirAll(filepath.Join(base, "elsewhere"), 0o755)
	os.Symlink("elsewhere", link)
	if _, err := checkout(context.Background(), src, link, Options{}, defaultLimits); err == nil {
		t.Errorf("symlink target accepted")
	}

	if _, err := checkout(context.Background(), src, filepath.Join(base, "no/such/parent"), Options{}, defaultLimits); err == nil {
		t.Errorf("missing parent accepted")
	}

	empty := filepath.Join(base, "empty")
	os.MkdirAll(empty, 0o755)
	if _, err := checkout(context.Background(), src, empty, Options{}, defaultLimits); err != nil {
		t.Fatalf("empty target: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(empty, "a")); string(b) != "1" {
		t.Errorf("empty target not filled")
	}
}

// TestCaseFolding checks the plan's collision rules for a
// case-insensitive target (this machine's file systems are not).
func TestCaseFolding(t *testing.T) {
	f := newFake()
	src := f.withRoot(f.file("README", "1"), f.file("ReadMe", "2"), f.file("other", "3"))
	p, err := makePlan(context.Background(), src, 10, true, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.collided) != 2 {
		t.Errorf("collided = %v, want README and ReadMe", p.collided)
	}
	if p2, err := makePlan(context.Background(), src, 10, false, defaultLimits); err != nil || len(p2.collided) != 0 {
		t.Errorf("case-sensitive plan: collided %v, err %v", p2.collided, err)
	}
	f = newFake()
	src = f.withRoot(f.link("A", "/tmp/outside"), f.dir("a", f.file("pwned", "x")))
	_, err = makePlan(context.Background(), src, 10, true, defaultLimits)
	var re *RefusedError
	if !errors.As(err, &re) || re.Path != "a" {
		t.Errorf("symlink A + dir a on a case-insensitive target: err = %v", err)
	}
	if foldKey("ǅ") != foldKey("ǆ") || foldKey("Straße") == foldKey("strasse") {
		t.Errorf("foldKey folds wrongly")
	}
}

// TestCollidedWriter runs the sequential path for colliding files; on this
// case-sensitive machine both names survive, each with its own content.
func TestCollidedWriter(t *testing.T) {
	f := newFake()
	src := f.withRoot(f.file("README", "1"), f.exec("ReadMe", "2"), f.file("x", "3"))
	p, err := makePlan(context.Background(), src, 10, true, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootfd, err := unix.Open(dir, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootfd)
	w := newWriter(src, rootfd, p, true, src.CommitTime())
	if err := w.run(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"README": "file:1", "ReadMe": "exec:2", "x": "file:3"}
	if d := diffMaps(want, readTree(t, dir)); len(d) > 0 {
		t.Errorf("collided writer: %v", d)
	}
	if len(w.collided) != 2 || w.files.Load() != 3 {
		t.Errorf("collided %v, files %d", w.collided, w.files.Load())
	}
}

func TestFinishAndFailureLeaveNothing(t *testing.T) {
	f := newFake()
	src := f.withRoot(f.file("a", "1"), f.dir("d", f.file("b", "2")))
	base := t.TempDir()
	out := filepath.Join(base, "out")
	_, err := checkout(context.Background(), src, out, Options{Finish: func(root *os.Root) error {
		if err := root.WriteFile("added", []byte("new"), 0o644); err != nil {
			return err
		}
		return root.Remove("a")
	}}, defaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"added": "file:new", "d": "dir", "d/b": "file:2"}
	if d := diffMaps(want, readTree(t, out)); len(d) > 0 {
		t.Errorf("finish not applied: %v", d)
	}
	// Finish cannot escape the tree.
	out2 := filepath.Join(base, "out2")
	_, err = checkout(context.Background(), src, out2, Options{Finish: func(root *os.Root) error {
		return root.WriteFile("../escaped", []byte("x"), 0o644)
	}}, defaultLimits)
	if err == nil {
		t.Errorf("finish escaping the root succeeded")
	}
	if _, err := os.Stat(filepath.Join(base, "escaped")); err == nil {
		t.Errorf("finish wrote outside the tree")
	}
	// A missing blob fails the checkout and leaves nothing.
	f = newFake()
	src = f.withRoot(f.file("a", "1"), snapshot.Entry{Name: "gone", Kind: snapshot.File, ID: f.id()})
	out3 := filepath.Join(base, "out3")
	if _, err := checkout(context.Background(), src, out3, Options{Workers: 2}, defaultLimits); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("missing blob: err = %v", err)
	}
	// So does a cancelled context.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := checkout(ctx, src, filepath.Join(base, "out4"), Options{}, defaultLimits); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	entries, _ := os.ReadDir(base)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "out" {
		t.Errorf("left in %s: %v", base, names)
	}
}

// TestGitIndex checks the index written with Options.Git against the
// files on disk (real git is exercised in the integration tests).
func TestGitIndex(t *testing.T) {
	f := newFake()
	src := f.withRoot(f.file("b", "2"), f.exec("a.sh", "1"), f.link("l", "b"), f.dir("d", f.file("c", "3")),
		snapshot.Entry{Name: "sub", Kind: snapshot.Gitlink, ID: f.id()})
	out := filepath.Join(t.TempDir(), "out")
	if _, err := checkout(context.Background(), src, out, Options{Git: true}, defaultLimits); err != nil {
		t.Fatal(err)
	}
	head, _ := os.ReadFile(filepath.Join(out, ".git/HEAD"))
	if string(head) != src.Commit()+"\n" {
		t.Errorf("HEAD = %q", head)
	}
	alt, _ := os.ReadFile(filepath.Join(out, ".git/objects/info/alternates"))
	if string(alt) != src.ObjectsDir()+"\n" {
		t.Errorf("alternates = %q", alt)
	}
	r, err := os.Open(filepath.Join(out, ".git/index"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var idx index.Index
	if err := index.NewDecoder(r).Decode(&idx); err != nil {
		t.Fatal(err)
	}
	wantModes := map[string]filemode.FileMode{"a.sh": filemode.Executable, "b": filemode.Regular, "d/c": filemode.Regular, "l": filemode.Symlink, "sub": filemode.Submodule}
	if len(idx.Entries) != len(wantModes) {
		t.Fatalf("index has %d entries, want %d", len(idx.Entries), len(wantModes))
	}
	var names []string
	for _, e := range idx.Entries {
		names = append(names, e.Name)
		if e.Mode != wantModes[e.Name] {
			t.Errorf("%s: mode %v, want %v", e.Name, e.Mode, wantModes[e.Name])
		}
		if e.Mode == filemode.Submodule {
			continue
		}
		fi, err := os.Lstat(filepath.Join(out, e.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !e.ModifiedAt.Equal(fi.ModTime()) || int64(e.Size) != fi.Size() {
			t.Errorf("%s: index has mtime %v size %d, disk %v %d", e.Name, e.ModifiedAt, e.Size, fi.ModTime(), fi.Size())
		}
	}
	if strings.Join(names, ",") != "a.sh,b,d/c,l,sub" {
		t.Errorf("index order %v", names)
	}
}

func TestMtimeClamped(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 500, time.UTC)
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := mtimeFor(old, now); !got.Equal(old) {
		t.Errorf("old commit: %v", got)
	}
	if got := mtimeFor(now.Add(time.Hour), now); !got.Before(now.Add(-time.Second)) {
		t.Errorf("future commit: %v not clamped", got)
	}
}
