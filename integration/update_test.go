package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

var mergeBase = []gittest.File{
	{Path: "a.txt", Content: []byte("1\n2\n3\n4\n5\n6\n7\n8\n")},
	{Path: "b.txt", Content: []byte("b\n")},
	{Path: "dir/c.txt", Content: []byte("c\n")},
}

func withFile(files []gittest.File, path, content string) []gittest.File {
	out := make([]gittest.File, 0, len(files)+1)
	found := false
	for _, f := range files {
		if f.Path == path {
			f.Content = []byte(content)
			found = true
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, gittest.File{Path: path, Content: []byte(content)})
	}
	return out
}

// TestMergeWorkspace: --merge-into shows what git merge gives; conflicts
// fail with exit 1 naming the paths and create nothing.
func TestMergeWorkspace(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "base", mergeBase)
	gittest.Git(t, repo.Dir, "branch", "feature", "main")
	gittest.Git(t, repo.Dir, "branch", "clash", "main")
	repo.Commit(t, "main", "main edit", withFile(mergeBase, "a.txt", "1 main\n2\n3\n4\n5\n6\n7\n8\n"))
	repo.Commit(t, "feature", "feature edit", withFile(withFile(mergeBase, "a.txt", "1\n2\n3\n4\n5\n6\n7\n8 feature\n"), "new.txt", "new\n"))
	repo.Commit(t, "clash", "clash edit", withFile(mergeBase, "b.txt", "clash\n"))
	repo.Commit(t, "main", "main edit 2", withFile(withFile(mergeBase, "a.txt", "1 main\n2\n3\n4\n5\n6\n7\n8\n"), "b.txt", "main b\n"))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	ws := wsCreate(t, root, "pr7", "--repo", "demo", "--rev", "feature", "--merge-into", "main")

	scratch := filepath.Join(t.TempDir(), "scratch")
	gittest.Git(t, "", "clone", "-q", repo.Dir, scratch)
	gittest.Git(t, scratch, "merge", "-q", "--no-edit", "origin/feature")
	want := gittest.ReadDir(t, scratch, ".git")
	if diff := gittest.Diff(want, gittest.ReadDir(t, ws, ".git"), 10); len(diff) > 0 {
		t.Fatalf("merge workspace differs from git merge:\n%s", strings.Join(diff, "\n"))
	}
	// A second workspace of the same pair shares the merge commit.
	wsCreate(t, root, "pr7b", "--repo", "demo", "--rev", "feature", "--merge-into", "main")
	list := mustGitfs(t, root, "ws", "list")
	var commits []string
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[0], "pr7") {
			commits = append(commits, f[2])
		}
	}
	if len(commits) != 2 || commits[0] != commits[1] {
		t.Errorf("two workspaces of one merge show commits %v, want one shared", commits)
	}

	r := gitfs(t, root, "ws", "create", "bad", "--repo", "demo", "--rev", "clash", "--merge-into", "main")
	if r.code != 1 || !strings.Contains(r.stderr, "b.txt") {
		t.Fatalf("conflicting merge: exit %d, stderr %q; want exit 1 naming b.txt", r.code, r.stderr)
	}
	if strings.Contains(mustGitfs(t, root, "ws", "list"), "bad") {
		t.Fatal("a conflicting merge created a workspace")
	}
}

// TestUpdateOpenHandleKeepsOldBytes: a handle opened before ws update
// reads the old content to the end; a new open reads the new.
func TestUpdateOpenHandleKeepsOldBytes(t *testing.T) {
	repo := gittest.NewRepo(t)
	old := strings.Repeat("old content\n", 50000)
	repo.Commit(t, "main", "v1", withFile(mergeBase, "big.txt", old))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	ws := wsCreate(t, root, "job1", "--repo", "demo", "--rev", "main")
	f, err := os.Open(filepath.Join(ws, "big.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	newContent := strings.Repeat("NEW CONTENT\n", 60000)
	repo.Commit(t, "main", "v2", withFile(mergeBase, "big.txt", newContent))
	out := mustGitfs(t, root, "ws", "update", "job1", "--fetch")
	if !strings.Contains(out, "->") {
		t.Errorf("ws update printed %q, want old -> new", out)
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("reading an old handle after update: %v", err)
	}
	if got := string(head) + string(rest); got != old {
		t.Fatalf("old handle read %d bytes that differ from the old content (%d bytes)", len(got), len(old))
	}
	b, err := os.ReadFile(filepath.Join(ws, "big.txt"))
	if err != nil || string(b) != newContent {
		t.Fatalf("new open after update: %d bytes, %v; want the new content", len(b), err)
	}
}

// TestUpdateRefusesConflictingLocalChange: a local change to a path that
// changed upstream blocks the update, which then changes nothing.
func TestUpdateRefusesConflictingLocalChange(t *testing.T) {
	repo := gittest.NewRepo(t)
	c1 := repo.Commit(t, "main", "v1", mergeBase)
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	ws := wsCreate(t, root, "job1", "--repo", "demo", "--rev", "main")
	if err := os.WriteFile(filepath.Join(ws, "b.txt"), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "mine.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, "main", "v2", withFile(withFile(mergeBase, "b.txt", "upstream\n"), "a.txt", "changed\n"))
	r := gitfs(t, root, "ws", "update", "job1", "--fetch")
	if r.code != 1 || !strings.Contains(r.stderr, "b.txt") {
		t.Fatalf("update over a conflicting local change: exit %d, %q; want exit 1 naming b.txt", r.code, r.stderr)
	}
	if !strings.Contains(mustGitfs(t, root, "ws", "list"), c1[:12]) {
		t.Error("refused update moved the workspace")
	}
	for path, want := range map[string]string{"b.txt": "local\n", "mine.txt": "mine\n", "a.txt": string(mergeBase[0].Content)} {
		if b, _ := os.ReadFile(filepath.Join(ws, path)); string(b) != want {
			t.Errorf("%s after refused update = %q, want %q", path, b, want)
		}
	}
	mustGitfs(t, root, "ws", "update", "job1", "--discard-changes")
	for path, want := range map[string]string{"b.txt": "upstream\n", "mine.txt": "mine\n", "a.txt": "changed\n"} {
		if b, _ := os.ReadFile(filepath.Join(ws, path)); string(b) != want {
			t.Errorf("%s after --discard-changes = %q, want %q", path, b, want)
		}
	}
}

// hashTree reads every regular file under dir and returns one digest.
func hashTree(dir string) (string, int64, error) {
	h := sha256.New()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v\n", rel, d.Type())
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		m, err := io.Copy(h, f)
		n += m
		return err
	})
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// TestReadersNeverWait: 8 workspaces are read end to end in parallel while
// a loop fetches new commits, creates merge workspaces for new heads and
// runs git gc in the mirror. Every reader sees the same hash on every pass
// and no read fails. Throughput with and without the loop is logged.
func TestReadersNeverWait(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := gittest.Generate(1500, 3)
	repo.Commit(t, "main", "base", files)
	gittest.Git(t, repo.Dir, "branch", "feature", "main")
	repo.Commit(t, "feature", "f1", withFile(files, "feature.txt", "f1\n"))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	d := serve(t, root, "")
	var dirs []string
	for i := 0; i < 8; i++ {
		args := []string{"--repo", "demo", "--rev", "main"}
		if i%2 == 1 {
			args = []string{"--repo", "demo", "--rev", "feature", "--merge-into", "main"}
		}
		dirs = append(dirs, wsCreate(t, root, fmt.Sprintf("r%d", i), args...))
	}
	want := make([]string, len(dirs))
	for i, dir := range dirs {
		h, _, err := hashTree(dir)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = h
	}
	// readFor returns the readers' throughput in bytes per second over
	// whole passes (the last pass may end after dur).
	readFor := func(dur time.Duration) float64 {
		var total atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		stop := start.Add(dur)
		for i, dir := range dirs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					h, n, err := hashTree(dir)
					if err != nil {
						t.Errorf("reader %d: %v", i, err)
						return
					}
					if h != want[i] {
						t.Errorf("reader %d: tree changed under a reader", i)
						return
					}
					total.Add(n)
				}
			}()
		}
		wg.Wait()
		return float64(total.Load()) / time.Since(start).Seconds()
	}
	const dur = 6 * time.Second
	quiet := readFor(dur)

	stopLoop := make(chan struct{})
	loopDone := make(chan struct{})
	var rounds int
	go func() {
		defer close(loopDone)
		for i := 0; ; i++ {
			select {
			case <-stopLoop:
				return
			default:
			}
			repo.Commit(t, "main", fmt.Sprintf("m%d", i), withFile(files, fmt.Sprintf("main-%d.txt", i), "m\n"))
			repo.Commit(t, "feature", fmt.Sprintf("f%d", i), withFile(files, fmt.Sprintf("feature-%d.txt", i), "f\n"))
			if r := gitfs(t, root, "repo", "fetch", "demo"); r.code != 0 {
				t.Errorf("fetch in loop: %s", r.stderr)
				return
			}
			if r := gitfs(t, root, "ws", "create", fmt.Sprintf("loop%d", i), "--repo", "demo", "--rev", "feature", "--merge-into", "main"); r.code != 0 {
				t.Errorf("ws create in loop: %s", r.stderr)
				return
			}
			gittest.Git(t, filepath.Join(root, "mirrors", "demo.git"), "gc", "-q", "--prune=now")
			rounds++
		}
	}()
	busy := readFor(dur)
	close(stopLoop)
	<-loopDone
	if rounds == 0 {
		t.Error("the background loop completed no round while readers ran")
	}
	t.Logf("readers: %.1f MB/s quiet, %.1f MB/s while fetch/merge/gc ran (%d rounds): ratio %.2f",
		quiet/1e6, busy/1e6, rounds, busy/max(quiet, 1))
	_ = d
}

// TestUpdateReset: ws update --reset drops every local change (modified,
// added, deleted, in new and old directories, conflicting or not) and
// leaves the tree git archive gives for the new commit, with ws status
// empty; a file unchanged between the commits keeps its inode, so what
// the kernel cached of it keeps serving.
func TestUpdateReset(t *testing.T) {
	repo, root, ws := mergeBaseWorkspace(t, "slot")
	keep := filepath.Join(ws, "dir", "c.txt")
	if b, err := os.ReadFile(keep); err != nil || string(b) != "c\n" {
		t.Fatalf("read %s: %q, %v", keep, b, err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(keep, &before); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{"b.txt": "local\n", "a.txt": "local a\n", "new/deep/n.txt": "n\n", "dir/mine.txt": "mine\n"} {
		p := filepath.Join(ws, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(ws, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	// Links a user plants for the daemon's removal to follow: the reset
	// removes the links, never what they name.
	outside := t.TempDir()
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ws, "new", "to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(precious, filepath.Join(ws, "dir", "to-file")); err != nil {
		t.Fatal(err)
	}
	c2 := repo.Commit(t, "main", "v2", withFile(mergeBase, "b.txt", "upstream\n"))
	if out := mustGitfs(t, root, "ws", "update", "slot", "--fetch", "--reset"); !strings.Contains(out, c2[:12]) {
		t.Errorf("ws update --reset printed %q, want the new commit", out)
	}
	// First, before anything else reads it again.
	reads := fuseRequestsByOp(t, root)["read"]
	if b, err := os.ReadFile(keep); err != nil || string(b) != "c\n" {
		t.Fatalf("read %s after --reset: %q, %v", keep, b, err)
	}
	if n := fuseRequestsByOp(t, root)["read"] - reads; n != 0 {
		t.Errorf("reading an unchanged file after --reset sent %d READs: its cached pages were dropped", n)
	}
	if b, err := os.ReadFile(precious); err != nil || string(b) != "keep\n" {
		t.Errorf("a file a planted link named, after --reset: %q, %v", b, err)
	}
	want := gittest.Archive(t, repo.Dir, c2)
	got := gittest.ReadDir(t, ws, ".git")
	if d := gittest.Diff(want, got, 10); len(d) > 0 {
		t.Fatalf("after --reset the workspace differs from git archive:\n%s", strings.Join(d, "\n"))
	}
	if st := mustGitfs(t, root, "ws", "status", "slot"); strings.TrimSpace(st) != "" {
		t.Errorf("ws status after --reset: %q, want nothing", st)
	}
	if fi, err := os.Stat(filepath.Join(ws, "dir")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dir after --reset: %v, %v; want the commit's 0755", fi, err)
	}
	var after syscall.Stat_t
	if err := syscall.Stat(keep, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("an unchanged file's inode moved across --reset: %d -> %d", before.Ino, after.Ino)
	}
	// Again at the same commit: a reset is also how a job's leftovers go.
	os.WriteFile(filepath.Join(ws, "b.txt"), []byte("again\n"), 0o644)
	if out := mustGitfs(t, root, "ws", "update", "slot", "--reset"); !strings.Contains(out, "reset at") {
		t.Errorf("a reset at the same commit printed %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "b.txt")); string(b) != "upstream\n" {
		t.Errorf("b.txt after the second reset = %q", b)
	}
	// The next job writes where the last one did (dir/ had local changes
	// and neither commit changes it): a build's outputs and edits.
	for path, content := range map[string]string{"dir/out.o": "obj\n", "dir/c.txt": "edited\n", "b.txt": "job 2\n"} {
		if err := os.WriteFile(filepath.Join(ws, path), []byte(content), 0o644); err != nil {
			t.Errorf("the next job's write of %s after --reset: %v", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(ws, "dir", "build", "obj"), 0o755); err != nil {
		t.Errorf("the next job's mkdir after --reset: %v", err)
	}
	if st := mustGitfs(t, root, "ws", "status", "slot"); strings.Count(st, "\n") != 3 {
		t.Errorf("ws status after the next job's writes: %q, want 3 changes", st)
	}
}

// TestUpdateTimes: ws update leaves the mtime of every file it does not
// change, gives the files it changes the time of the update (as git
// checkout does: make rebuilds what changed, and only that), and writes an
// index whose stat data agrees, so git status is clean at once.
func TestUpdateTimes(t *testing.T) {
	repo, root, ws := mergeBaseWorkspace(t, "times")
	mtime := func(p string) time.Time {
		t.Helper()
		fi, err := os.Stat(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	keep0, changed0 := mtime("dir/c.txt"), mtime("b.txt")
	time.Sleep(1100 * time.Millisecond) // commit times have seconds
	repo.Commit(t, "main", "v2", withFile(withFile(mergeBase, "b.txt", "upstream\n"), "new/n.txt", "n\n"))
	before := time.Now()
	mustGitfs(t, root, "ws", "update", "times", "--fetch")
	if got := mtime("dir/c.txt"); !got.Equal(keep0) {
		t.Errorf("an unchanged file's mtime moved: %v -> %v", keep0, got)
	}
	if got := mtime("b.txt"); !got.After(changed0) || got.Before(before.Truncate(time.Second)) {
		t.Errorf("a changed file's mtime is %v; want the update's time (after %v)", got, before)
	}
	if got := mtime("new/n.txt"); got.Before(before.Truncate(time.Second)) {
		t.Errorf("a file in an added directory shows %v; want the update's time", got)
	}
	if out := gittest.Git(t, ws, "status", "--porcelain"); out != "" {
		t.Errorf("git status after ws update: %q, want clean", out)
	}
}

// mergeBaseWorkspace serves a new root whose repository "demo" holds
// mergeBase as main's commit "v1", and creates workspace name at main.
func mergeBaseWorkspace(t *testing.T, name string) (repo *gittest.Repo, root, ws string) {
	t.Helper()
	repo = gittest.NewRepo(t)
	repo.Commit(t, "main", "v1", mergeBase)
	root = t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	return repo, root, wsCreate(t, root, name, "--repo", "demo", "--rev", "main")
}
