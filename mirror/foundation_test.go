package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/locks"
)

// fndSyncBuffer is a log sink safe for concurrent writers.
type fndSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *fndSyncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *fndSyncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

type fndFixture struct {
	repo   *gittest.Repo
	root   string
	set    *Set
	log    *fndSyncBuffer
	commit string // main
}

// fndSetup makes a remote with main and tag v1, and a mirror "demo" of it
// under a fresh root.
func fndSetup(t *testing.T) *fndFixture {
	t.Helper()
	f := &fndFixture{repo: gittest.NewRepo(t), root: t.TempDir(), log: &fndSyncBuffer{}}
	f.commit = f.repo.Commit(t, "main", "first", gittest.Generate(20, 1))
	gittest.Git(t, f.repo.Dir, "tag", "v1")
	f.set = f.newSet(t)
	if _, err := f.set.Add(context.Background(), "demo", f.repo.Dir); err != nil {
		t.Fatal(err)
	}
	return f
}

// newSet opens the root again, as another process would.
func (f *fndFixture) newSet(t *testing.T) *Set {
	t.Helper()
	s, err := Open(f.root, slog.New(slog.NewTextHandler(f.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fndFixture) dir() string { return filepath.Join(f.root, "mirrors", "demo.git") }

// fndUploadPackWrapper writes an upload-pack that counts its calls in
// countFile and sleeps delay first, and returns its path.
func fndUploadPackWrapper(t *testing.T, countFile string, delay time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "upload-pack")
	script := fmt.Sprintf("#!/bin/sh\necho x >> '%s'\nsleep %.3f\nexec git upload-pack \"$@\"\n", countFile, delay.Seconds())
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func fndCount(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "x")
}

func TestFoundationValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"demo", true},
		{"Demo_1.2-x", true},
		{"_x", true},
		{"a..b", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-flag", false},
		{"a/b", false},
		{"../x", false},
		{"x/..", false},
		{"a b", false},
		{"a\x00b", false},
		{"demo.git", false},
		{strings.Repeat("x", 101), false},
	}
	for _, tc := range tests {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestFoundationGitVersion(t *testing.T) {
	tests := []struct {
		out string
		ok  bool
	}{
		{"git version 2.39.5\n", true},
		{"git version 2.38.0", true},
		{"git version 2.45.1.windows.1", true},
		{"git version 2.39.3 (Apple Git-145)", true},
		{"git version 3.0.0", true},
		{"git version 2.37.7", false},
		{"git version 1.9.9", false},
		{"hub version 2.14.2", false},
		{"", false},
	}
	for _, tc := range tests {
		err := checkGitVersion(tc.out)
		if (err == nil) != tc.ok {
			t.Errorf("checkGitVersion(%q) = %v, want ok=%v", tc.out, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "2.38") {
			t.Errorf("error %q does not say which version is needed", err)
		}
	}
	if err := CheckGit(); err != nil {
		t.Fatalf("this machine's git: %v", err)
	}
}

func TestFoundationNormalizeURL(t *testing.T) {
	dir := t.TempDir()
	cwd, _ := os.Getwd()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{dir, dir, true},
		{"file:///x/y.git", "file:///x/y.git", true},
		{"https://example.com/a.git", "https://example.com/a.git", true},
		{"git@example.com:a/b.git", "git@example.com:a/b.git", true},
		{"ssh://git@example.com/a", "ssh://git@example.com/a", true},
		{".", cwd, true},
		{"", "", false},
		{filepath.Join(dir, "missing"), "", false},
		{"./no/such/dir:x", "", false}, // a slash before the colon: a path
	}
	for _, tc := range tests {
		got, err := normalizeURL(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("normalizeURL(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFoundationResolve(t *testing.T) {
	f := fndSetup(t)
	ctx := context.Background()
	second := f.repo.Commit(t, "feature", "second", gittest.Generate(3, 2))
	// A tag with the name of a branch: the branch wins.
	gittest.Git(t, f.repo.Dir, "tag", "feature", f.commit)
	gittest.Git(t, f.repo.Dir, "tag", "-a", "-m", "annotated", "v2", second)
	if _, err := f.set.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	m, err := f.set.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rev, want string
		ok        bool
	}{
		{"main", f.commit, true},
		{"HEAD", f.commit, true},
		{"v1", f.commit, true},
		{"v2", second, true}, // annotated tag peels to its commit
		{"feature", second, true},
		{"refs/tags/feature", f.commit, true},
		{f.commit, f.commit, true},
		{f.commit[:10], f.commit, true},
		{"main~0", f.commit, true},
		{"nope", "", false},
		{"", "", false},
		{"--all", "", false},
		{"-h", "", false},
		{"main\nx", "", false},
		{strings.Repeat("1", 40), "", false},
	}
	for _, tc := range tests {
		got, err := m.Resolve(ctx, tc.rev)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q ok=%v", tc.rev, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnknownRev) {
			t.Errorf("Resolve(%q): %v is not ErrUnknownRev", tc.rev, err)
		}
	}
}

// TestFoundationInheritedGitDir: a GIT_DIR in gitfs's environment (a git hook,
// a shell in a repository) must not make git work on another repository.
func TestFoundationInheritedGitDir(t *testing.T) {
	f := fndSetup(t)
	other := gittest.NewRepo(t)
	otherCommit := other.Commit(t, "main", "other", gittest.Generate(2, 9))
	t.Setenv("GIT_DIR", filepath.Join(other.Dir, ".git"))
	m, err := f.set.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Resolve(context.Background(), "main")
	if err != nil || got != f.commit {
		t.Fatalf("Resolve(main) = %s, %v; want the mirror's %s (the other repository has %s)", got, err, f.commit, otherCommit)
	}
}

// TestFoundationAddRace: concurrent adds through separate Sets (as separate
// processes) all succeed, one mirror results and no temp dir is left.
func TestFoundationAddRace(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "first", gittest.Generate(50, 3))
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				_, err = s.Add(context.Background(), "demo", repo.Dir)
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "mirrors"))
	if len(entries) != 1 || entries[0].Name() != "demo.git" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("mirrors/ holds %v, want [demo.git]", names)
	}
	// Adding again with another URL is refused; the same URL is a no-op.
	s, _ := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := s.Add(context.Background(), "demo", t.TempDir()); err == nil {
		t.Error("adding demo again with another URL succeeded")
	}
}

// TestFoundationBrokenMirror: each kind of damage is detected when the mirror
// is opened, the mirror is moved aside and cloned again, and the log says so.
func TestFoundationBrokenMirror(t *testing.T) {
	largestPack := func(t *testing.T, dir string) string {
		packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
		sort.Slice(packs, func(i, j int) bool { return fndSize(packs[i]) > fndSize(packs[j]) })
		if len(packs) == 0 {
			t.Fatal("mirror has no pack")
		}
		return packs[0]
	}
	tests := []struct {
		name          string
		enclosingRepo bool // the root lies inside another git work tree
		poison        func(t *testing.T, dir string)
		wantBroken    bool
	}{
		{"healthy", false, func(*testing.T, string) {}, false},
		{"truncated pack", false, func(t *testing.T, dir string) {
			p := largestPack(t, dir)
			fndMust(t, os.Truncate(p, fndSize(p)/2))
		}, true},
		{"pack missing, index present", false, func(t *testing.T, dir string) {
			fndMust(t, os.Remove(largestPack(t, dir)))
		}, true},
		{"refs emptied", false, func(t *testing.T, dir string) {
			fndMust(t, os.Remove(filepath.Join(dir, "packed-refs")))
			fndMust(t, os.RemoveAll(filepath.Join(dir, "refs")))
			fndMust(t, os.MkdirAll(filepath.Join(dir, "refs", "heads"), 0o755))
			fndMust(t, os.MkdirAll(filepath.Join(dir, "refs", "tags"), 0o755))
		}, true},
		{"refs dir gone, root inside another repository", true, func(t *testing.T, dir string) {
			fndMust(t, os.Remove(filepath.Join(dir, "packed-refs")))
			fndMust(t, os.RemoveAll(filepath.Join(dir, "refs")))
		}, true},
		{"garbage line in packed-refs", false, func(t *testing.T, dir string) {
			fndAppend(t, filepath.Join(dir, "packed-refs"), "this is not a ref\n")
		}, true},
		{"packed-refs cut mid-line", false, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "packed-refs")
			fndMust(t, os.Truncate(p, fndSize(p)-7))
		}, true},
		{"packed-refs names a missing object", false, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "packed-refs")
			b, err := os.ReadFile(p)
			fndMust(t, err)
			lines := strings.Split(string(b), "\n")
			for i, l := range lines {
				if len(l) > 41 && l[40] == ' ' {
					lines[i] = strings.Repeat("1", 40) + l[40:]
				}
			}
			fndMust(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fndFixture{repo: gittest.NewRepo(t), root: t.TempDir(), log: &fndSyncBuffer{}}
			f.commit = f.repo.Commit(t, "main", "first", gittest.Generate(40, 4))
			if tc.enclosingRepo {
				outer := t.TempDir()
				other := &gittest.Repo{Dir: outer}
				gittest.Git(t, "", "init", "-q", "-b", "main", outer)
				other.Commit(t, "main", "outer", gittest.Generate(2, 5))
				f.root = filepath.Join(outer, "cache", "gitfs")
			}
			f.set = f.newSet(t)
			ctx := context.Background()
			if _, err := f.set.Add(ctx, "demo", f.repo.Dir); err != nil {
				t.Fatal(err)
			}
			tc.poison(t, f.dir())
			m := &Mirror{Name: "demo", Dir: f.dir(), set: f.set}
			herr := m.checkHealth(ctx)
			if (herr != nil) != tc.wantBroken {
				t.Fatalf("checkHealth = %v, want broken=%v", herr, tc.wantBroken)
			}
			m, err := f.set.Get(ctx, "demo")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if err := m.checkHealth(ctx); err != nil {
				t.Fatalf("after Get: %v", err)
			}
			if got, err := m.Resolve(ctx, "main"); err != nil || got != f.commit {
				t.Fatalf("Resolve(main) = %s, %v; want %s", got, err, f.commit)
			}
			aside, _ := filepath.Glob(filepath.Join(f.root, "mirrors", "demo.broken-*"))
			logged := strings.Contains(f.log.String(), "mirror is broken")
			if tc.wantBroken != (len(aside) == 1) || tc.wantBroken != logged {
				t.Fatalf("moved aside: %v, logged: %v; want %v\nlog: %s", aside, logged, tc.wantBroken, f.log)
			}
			if tmps, _ := filepath.Glob(filepath.Join(f.root, "mirrors", "*"+locks.TempMarker+"*")); len(tmps) > 0 {
				t.Fatalf("temp dirs left: %v", tmps)
			}
		})
	}
}

// TestFoundationRepairFailureKeepsBrokenMirror: when the remote is gone, a
// broken mirror is neither served nor lost: Get fails and says why, and the
// mirror (with its URL) stays for the next attempt.
func TestFoundationRepairFailureKeepsBrokenMirror(t *testing.T) {
	f := fndSetup(t)
	ctx := context.Background()
	fndMust(t, os.Remove(filepath.Join(f.dir(), "packed-refs")))
	moved := f.repo.Dir + ".moved"
	fndMust(t, os.Rename(f.repo.Dir, moved))
	if _, err := f.set.Get(ctx, "demo"); err == nil || !strings.Contains(err.Error(), "re-clone") {
		t.Fatalf("Get of a broken mirror with its remote gone: %v", err)
	}
	if _, err := os.Stat(f.dir()); err != nil {
		t.Fatalf("broken mirror lost: %v", err)
	}
	fndMust(t, os.Rename(moved, f.repo.Dir))
	if _, err := f.set.Get(ctx, "demo"); err != nil {
		t.Fatalf("Get once the remote is back: %v", err)
	}
}

func TestFoundationGetUnknownCreatesNothing(t *testing.T) {
	f := fndSetup(t)
	before := fndListTree(t, f.root)
	for _, name := range []string{"nope", "../x", "a/b", ""} {
		if _, err := f.set.Get(context.Background(), name); err == nil {
			t.Errorf("Get(%q) succeeded", name)
		} else if name == "nope" && !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(nope) = %v, want ErrNotFound", err)
		}
	}
	if after := fndListTree(t, f.root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("Get of unknown names changed the root:\nbefore %v\nafter  %v", before, after)
	}
}

// TestFoundationFetchCoalesces: concurrent fetches in one process run one
// git fetch; fetches through separate Sets (separate processes) wait for
// the running one and take its result.
func TestFoundationFetchCoalesces(t *testing.T) {
	tests := []struct {
		name      string
		sets      int // separate Sets, standing in for processes
		perSet    int
		maxFetch  int
		coalesced int // at least
	}{
		// One fetch is what happens; a second is tolerated for a caller
		// so slow to start (loaded CI) that the first had already finished.
		{"one process", 1, 8, 2, 6},
		{"four processes", 4, 2, 2, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fndSetup(t)
			count := filepath.Join(t.TempDir(), "count")
			wrapper := fndUploadPackWrapper(t, count, 300*time.Millisecond)
			gittest.Git(t, f.dir(), "config", "remote.origin.uploadpack", wrapper)
			want := f.repo.Commit(t, "main", "second", gittest.Generate(25, 6))
			var wg sync.WaitGroup
			var mu sync.Mutex
			coalesced := 0
			start := make(chan struct{})
			for i := 0; i < tc.sets; i++ {
				s := f.newSet(t)
				for j := 0; j < tc.perSet; j++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						res, err := s.Fetch(context.Background(), "demo")
						if err != nil {
							t.Errorf("fetch: %v", err)
						}
						mu.Lock()
						if res.Coalesced {
							coalesced++
						}
						mu.Unlock()
					}()
				}
			}
			close(start)
			wg.Wait()
			n := fndCount(t, count)
			if n < 1 || n > tc.maxFetch || coalesced < tc.coalesced {
				t.Fatalf("%d callers ran %d fetches (%d coalesced); want 1..%d fetches, >= %d coalesced",
					tc.sets*tc.perSet, n, coalesced, tc.maxFetch, tc.coalesced)
			}
			m, _ := f.set.Get(context.Background(), "demo")
			if got, _ := m.Resolve(context.Background(), "main"); got != want {
				t.Fatalf("main = %s after fetch, want %s", got, want)
			}
		})
	}
}

// TestFoundationFetch: what a fetch does to the mirror in each situation.
func TestFoundationFetch(t *testing.T) {
	tests := []struct {
		name string
		// change the remote and the mirror; return what main must be after
		// the fetch and whether it must fail
		setup   func(t *testing.T, f *fndFixture) (wantMain string, wantErr bool)
		after   func(t *testing.T, f *fndFixture)
		wantRef map[string]bool // refs that must (true) or must not exist
	}{
		{"force-push and branch deletion", func(t *testing.T, f *fndFixture) (string, bool) {
			gittest.Git(t, f.repo.Dir, "branch", "gone", "main")
			if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, f.repo.Dir, "branch", "-D", "gone")
			c := f.repo.Commit(t, "rewrite", "unrelated", gittest.Generate(5, 7))
			gittest.Git(t, f.repo.Dir, "update-ref", "refs/heads/main", c)
			gittest.Git(t, f.repo.Dir, "branch", "-D", "rewrite")
			return c, false
		}, nil, map[string]bool{"refs/heads/gone": false, "refs/heads/rewrite": false, "refs/tags/v1": true}},
		{"stale git locks of a killed fetch", func(t *testing.T, f *fndFixture) (string, bool) {
			c := f.repo.Commit(t, "main", "second", gittest.Generate(5, 8))
			for _, p := range []string{"packed-refs.lock", "refs/heads/main.lock", "objects/pack/tmp_pack_abc", "config.lock"} {
				fndMust(t, os.WriteFile(filepath.Join(f.dir(), p), []byte("x"), 0o644))
			}
			packs, _ := filepath.Glob(filepath.Join(f.dir(), "objects", "pack", "pack-*.pack"))
			fndMust(t, os.WriteFile(strings.TrimSuffix(packs[0], ".pack")+".keep", []byte("fetch-pack 12345 on host\n"), 0o644))
			return c, false
		}, func(t *testing.T, f *fndFixture) {
			for _, p := range []string{"packed-refs.lock", "refs/heads/main.lock", "objects/pack/tmp_pack_abc", "config.lock"} {
				if _, err := os.Stat(filepath.Join(f.dir(), p)); err == nil {
					t.Errorf("%s still there", p)
				}
			}
			if keeps, _ := filepath.Glob(filepath.Join(f.dir(), "objects", "pack", "*.keep")); len(keeps) > 0 {
				t.Errorf("transient .keep of a killed fetch still there: %v", keeps)
			}
		}, nil},
		{"remote gone: fails, mirror unchanged", func(t *testing.T, f *fndFixture) (string, bool) {
			f.repo.Commit(t, "main", "second", gittest.Generate(5, 9))
			fndMust(t, os.Rename(f.repo.Dir, f.repo.Dir+".gone"))
			return f.commit, true
		}, func(t *testing.T, f *fndFixture) {
			if st := readState(f.dir()); st.Error == "" {
				t.Error("failed fetch not recorded in the state")
			}
			fndMust(t, os.Rename(f.repo.Dir+".gone", f.repo.Dir))
			if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
				t.Fatalf("fetch after the remote is back: %v", err)
			}
			if st := readState(f.dir()); st.Error != "" {
				t.Errorf("error not cleared: %s", st.Error)
			}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := fndSetup(t)
			ctx := context.Background()
			wantMain, wantErr := tc.setup(t, f)
			before := readState(f.dir())
			_, err := f.set.Fetch(ctx, "demo")
			if (err != nil) != wantErr {
				t.Fatalf("fetch: %v, want error=%v", err, wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "fetch demo: ") {
				t.Errorf("error %q does not say what failed", err)
			}
			if st := readState(f.dir()); st.Gen != before.Gen+1 {
				t.Errorf("gen %d -> %d, want one more", before.Gen, st.Gen)
			}
			m, err := f.set.Get(ctx, "demo")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := m.Resolve(ctx, "main"); got != wantMain {
				t.Fatalf("main = %s, %v; want %s", got, err, wantMain)
			}
			for ref, want := range tc.wantRef {
				_, err := m.Resolve(ctx, ref)
				if (err == nil) != want {
					t.Errorf("%s exists=%v, want %v", ref, err == nil, want)
				}
			}
			if tc.after != nil {
				tc.after(t, f)
			}
		})
	}
}

// TestFoundationCleanStaleTemps: gc-time cleanup removes a dead builder's
// clone temp dir, keeps a live one's and the mirrors and broken copies.
func TestFoundationCleanStaleTemps(t *testing.T) {
	f := fndSetup(t)
	dead := exec.Command("true")
	fndMust(t, dead.Run())
	mirrors := filepath.Join(f.root, "mirrors")
	deadTmp := filepath.Join(mirrors, "x.git"+locks.TempMarker+strconv.Itoa(dead.Process.Pid)+"-aa")
	liveTmp := filepath.Join(mirrors, "y.git"+locks.TempMarker+strconv.Itoa(os.Getpid())+"-bb")
	broken := filepath.Join(mirrors, "demo.broken-20260101T000000.000000000")
	for _, d := range []string{deadTmp, liveTmp, broken} {
		fndMust(t, os.MkdirAll(filepath.Join(d, "objects"), 0o755))
	}
	f.set.CleanStale()
	for path, want := range map[string]bool{deadTmp: false, liveTmp: true, broken: true, f.dir(): true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s kept=%v, want %v", filepath.Base(path), err == nil, want)
		}
	}
}

func TestFoundationMirrorConfig(t *testing.T) {
	f := fndSetup(t)
	for key, want := range map[string]string{
		"gc.auto":              "0",
		"transfer.fsckobjects": "true",
		"fetch.unpacklimit":    "1",
		"remote.origin.mirror": "true",
	} {
		if got := gittest.Git(t, f.dir(), "config", "--get", key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if out, _ := gittest.GitErr(f.dir(), "config", "--get-regexp", "lowspeed"); out != "" {
		t.Errorf("mirror sets a low-speed limit that would kill slow healthy fetches: %s", out)
	}
	// Fetches keep packs, even of a single new object.
	f.repo.Commit(t, "main", "one more", append(gittest.Generate(20, 1), gittest.File{Path: "new", Content: []byte("x")}))
	if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	m, _ := f.set.Get(context.Background(), "demo")
	if loose, err := m.looseObjects(); err != nil || len(loose) > 0 {
		t.Errorf("fetch left %d loose objects (%v): it should keep packs", len(loose), err)
	}
}

// fndProcGone reports whether pid has exited (gone or a zombie).
func fndProcGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func fndWaitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !fndProcGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still running", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fndParent returns the parent pid of pid.
func fndParent(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	fndMust(t, err)
	fields := strings.Fields(string(b)[strings.LastIndex(string(b), ")")+1:])
	ppid, err := strconv.Atoi(fields[1])
	fndMust(t, err)
	return ppid
}

// hangingGit runs a git alias that records its shell's pid in pidFile and
// sleeps: git -> sh -> sleep, all in git's process group.
func fndHangingGit(pidFile string) gitCmd {
	return gitCmd{args: []string{"-c", "alias.hang=!echo $$ > '" + pidFile + "'; exec sleep 60", "hang"}}
}

func fndWaitPidFile(t *testing.T, pidFile string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			fndMust(t, err)
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("git child never started")
	return 0
}

// TestFoundationCancelKillsProcessGroup: cancelling a git command kills git
// and everything it started.
func TestFoundationCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := fndHangingGit(pidFile).run(ctx)
		done <- err
	}()
	sleepPid := fndWaitPidFile(t, pidFile)
	t.Cleanup(func() { syscall.Kill(sleepPid, syscall.SIGKILL) })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	fndWaitGone(t, sleepPid, "git's grandchild")
}

const fndHelperEnv = "GITFS_MIRROR_TEST_HANG"

// TestFoundationHelperHangingGit is not a test: TestFoundationGitDiesWithGitfs
// runs it in a child process that starts a hanging git and waits.
func TestFoundationHelperHangingGit(t *testing.T) {
	pidFile := os.Getenv(fndHelperEnv)
	if pidFile == "" {
		t.Skip("helper process only")
	}
	fndHangingGit(pidFile).run(context.Background())
	os.Exit(0)
}

// TestFoundationGitDiesWithGitfs: kill -9 of gitfs kills its git child, so no
// git goes on writing into a mirror whose lock the kernel just released.
func TestFoundationGitDiesWithGitfs(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run=^TestFoundationHelperHangingGit$")
	cmd.Env = append(os.Environ(), fndHelperEnv+"="+pidFile)
	fndMust(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sleepPid := fndWaitPidFile(t, pidFile)
	t.Cleanup(func() { syscall.Kill(sleepPid, syscall.SIGKILL) })
	gitPid := fndParent(t, sleepPid)
	if gitPid == cmd.Process.Pid || fndParent(t, gitPid) != cmd.Process.Pid {
		t.Fatalf("unexpected process tree: helper %d, git %d, sleep %d", cmd.Process.Pid, gitPid, sleepPid)
	}
	fndMust(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	fndWaitGone(t, gitPid, "git child of a killed gitfs")
}

func fndMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fndSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

func fndAppend(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	fndMust(t, err)
	_, err = fh.WriteString(s)
	fndMust(t, err)
	fndMust(t, fh.Close())
}

func fndListTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}
