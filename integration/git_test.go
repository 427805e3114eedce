package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
)

// gitRepoFixture is a remote with two branches, a lightweight and an
// annotated tag and an ignore file; the root mirrors it as "demo".
func gitRepoFixture(t *testing.T) (repo *gittest.Repo, root string) {
	t.Helper()
	repo = gittest.NewRepo(t)
	files := append(gittest.Generate(40, 5),
		gittest.File{Path: ".gitignore", Content: []byte("*.log\nbuild/\n")},
		gittest.File{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: "100755"},
		gittest.File{Path: "link", Content: []byte("bin/run.sh"), Mode: "120000"},
		gittest.File{Path: "docs/guide.md", Content: []byte("# Guide\n\nline one\nline two\n")},
	)
	repo.Commit(t, "main", "first", files)
	gittest.Git(t, repo.Dir, "tag", "v1")
	gittest.Git(t, repo.Dir, "-c", "user.name=t", "-c", "user.email=t@x", "tag", "-a", "v1.1", "-m", "annotated")
	gittest.Git(t, repo.Dir, "branch", "feature", "main")
	repo.Commit(t, "feature", "feature work", append(files, gittest.File{Path: "feature.txt", Content: []byte("feature\n")}))
	repo.Commit(t, "main", "second", append(files, gittest.File{Path: "docs/guide.md", Content: []byte("# Guide\n\nline one\nline 2\n")}))
	root = t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	return repo, root
}

// cloneAt is what a user would have without gitfs: a clone with the
// commit checked out.
func cloneAt(t *testing.T, repo *gittest.Repo, commit string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	gittest.Git(t, "", "clone", "-q", repo.Dir, dir)
	gittest.Git(t, dir, "checkout", "-q", "--detach", commit)
	return dir
}

// gitEnv fixes everything that would make two runs' commits differ.
var gitEnv = []string{
	"GIT_AUTHOR_NAME=A U Thor", "GIT_AUTHOR_EMAIL=author@example.com", "GIT_AUTHOR_DATE=1700000000 +0000",
	"GIT_COMMITTER_NAME=C O Mitter", "GIT_COMMITTER_EMAIL=committer@example.com", "GIT_COMMITTER_DATE=1700000000 +0000",
	"GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent", "LC_ALL=C", "TZ=UTC", "GIT_PAGER=cat", "PAGER=cat",
}

// runScript runs each step with sh -c in dir and returns what each printed
// and its exit status.
func runScript(t *testing.T, dir string, steps []string) []string {
	t.Helper()
	var out []string
	for _, s := range steps {
		cmd := exec.Command("sh", "-c", s)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), gitEnv...)
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		out = append(out, fmt.Sprintf("$ %s\n%s[exit %d]\n", s, b.String(), code))
	}
	return out
}

// TestGitFreshWorkspace: a new workspace, plain or a merge, is a git
// working tree that answers as a clone does.
func TestGitFreshWorkspace(t *testing.T) {
	repo, root := gitRepoFixture(t)
	serve(t, root, "")
	main := strings.TrimSpace(gittest.Git(t, repo.Dir, "rev-parse", "main"))
	ws := wsCreate(t, root, "plain", "--repo", "demo", "--rev", "main")
	clone := cloneAt(t, repo, main)
	steps := []string{
		"git status --porcelain",
		"git status",
		"git rev-parse HEAD",
		"git describe --tags",
		"git log --oneline -5 origin/main",
		"git branch -r",
		"git tag -l",
		"git remote -v",
		"git ls-files -s | head -20",
		"git merge-base HEAD origin/main",
		"git diff --stat origin/feature",
		// The index's cache tree must name the commit's trees.
		"test $(git write-tree) = $(git rev-parse HEAD^{tree}) && echo cache-tree-ok",
		"git diff --cached --stat",
	}
	want, got := runScript(t, clone, steps), runScript(t, ws, steps)
	for i := range steps {
		if want[i] != got[i] {
			t.Errorf("workspace differs from a clone:\nclone:\n%s\nworkspace:\n%s", want[i], got[i])
		}
	}
	// By default git's fsmonitor is gitfs only with a git that reads its
	// answers right (>= 2.43).
	hasHook := runScript(t, ws, []string{"git config core.fsmonitor >/dev/null && echo yes"})[0]
	if wantHook := mirror.GitAtLeast(2, 43); strings.Contains(hasHook, "\nyes\n") != wantHook {
		t.Errorf("core.fsmonitor set: %q, want %v for this git", hasHook, wantHook)
	}
	// A merge workspace: HEAD is the synthetic merge, both parents reachable.
	out := mustGitfs(t, root, "ws", "create", "merged", "--repo", "demo", "--rev", "feature", "--merge-into", "main")
	mws := strings.TrimSpace(out)
	feature := strings.TrimSpace(gittest.Git(t, repo.Dir, "rev-parse", "feature"))
	r := runScript(t, mws, []string{"git status --porcelain", "git rev-parse HEAD^1 HEAD^2", "git cat-file -t HEAD"})
	if r[0] != "$ git status --porcelain\n[exit 0]\n" {
		t.Errorf("merge workspace not clean: %s", r[0])
	}
	if !strings.Contains(r[1], main+"\n"+feature+"\n") {
		t.Errorf("merge parents: %s, want %s then %s", r[1], main, feature)
	}
	if !strings.Contains(r[2], "commit") {
		t.Errorf("HEAD of the merge workspace: %s", r[2])
	}
}

// TestGitSessionMatchesClone: one scripted session of edits and git
// commands gives byte-identical output in a workspace and in a clone, and
// leaves the mirror and the snapshot as they were.
func TestGitSessionMatchesClone(t *testing.T) {
	repo, root := gitRepoFixture(t)
	serve(t, root, "")
	main := strings.TrimSpace(gittest.Git(t, repo.Dir, "rev-parse", "main"))
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", "main")
	clone := cloneAt(t, repo, main)
	before := treeStamp(t, filepath.Join(root, "mirrors"), filepath.Join(root, "snapshots"))
	steps := []string{
		"echo changed >> docs/guide.md",
		"echo added > added.txt && git add added.txt",
		"rm f000003.txt",
		"git mv f000004.txt renamed.txt",
		"mkdir -p newdir && git mv d00 newdir/moved",
		"chmod +x f000005.txt",
		"ln -s docs/guide.md guide-link",
		"echo untracked > untracked.txt",
		"echo ignored > debug.log",
		"git status --porcelain",
		"git status --porcelain=v2",
		"git status",
		"git diff",
		"git diff --cached",
		"git add -A && git status --short",
		"git commit -q -m 'local work' && git log --oneline -3",
		"git show --stat HEAD",
		"git commit -q --amend -m 'local work, amended' && git rev-parse HEAD",
		"git ls-files -s | head -30",
		"git blame -s docs/guide.md",
		"git grep -n line",
		"echo more >> added.txt && echo new2 > stashed.txt && git stash -u -q && git status --short && git stash pop -q && git status --short",
		"git checkout -- added.txt && git status --short",
		"echo oops >> docs/guide.md && git restore docs/guide.md && git status --short",
		"git reset -q --hard && git status --short",
		"git clean -fdxq && git status --short --ignored",
		"git describe --tags",
		"git rev-parse HEAD HEAD~1",
		"git branch -r",
		"git switch -q -c topic origin/feature && git status --short && git log --oneline -2",
		"git merge -q --no-edit main && git log --oneline -3",
		"git cherry-pick HEAD~1 2>&1 | tail -1; git cherry-pick --abort 2>/dev/null; git status --short",
		"git switch -q --detach main@{0} 2>/dev/null || git switch -q --detach origin/main; git rebase -q topic && git log --oneline -3",
		"git archive HEAD | tar -t | sort | head -20",
		"git fsck --no-progress 2>&1 | grep -v '^dangling' | head",
	}
	want, got := runScript(t, clone, steps), runScript(t, ws, steps)
	for i := range steps {
		if want[i] != got[i] {
			t.Errorf("workspace differs from a clone:\nclone:\n%s\nworkspace:\n%s", want[i], got[i])
		}
	}
	if after := treeStamp(t, filepath.Join(root, "mirrors"), filepath.Join(root, "snapshots")); after != before {
		t.Error("git in the workspace changed the mirror or a snapshot")
	}
}

// TestGitSurvivesKill: what git add and git commit wrote survives a kill -9
// of the daemon.
func TestGitSurvivesKill(t *testing.T) {
	_, root := gitRepoFixture(t)
	d := serve(t, root, "")
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", "main")
	runScript(t, ws, []string{"echo a > a.txt && git add a.txt"})
	before := runScript(t, ws, []string{"git status --porcelain"})
	d.kill9()
	d = serve(t, root, d.mnt)
	if after := runScript(t, ws, []string{"git status --porcelain"}); after[0] != before[0] {
		t.Errorf("after git add and kill -9: %s, want %s", after[0], before[0])
	}
	runScript(t, ws, []string{"git commit -q -m c"})
	before = runScript(t, ws, []string{"git log --oneline -2", "git status --porcelain"})
	d.kill9()
	serve(t, root, d.mnt)
	after := runScript(t, ws, []string{"git log --oneline -2", "git status --porcelain"})
	for i := range before {
		if after[i] != before[i] {
			t.Errorf("after git commit and kill -9: %s, want %s", after[i], before[i])
		}
	}
}

// TestGitAfterUpdate: ws update moves HEAD, the refs and the index; what
// was changed locally stays a change.
func TestGitAfterUpdate(t *testing.T) {
	repo, root := gitRepoFixture(t)
	serve(t, root, "")
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", "main")
	runScript(t, ws, []string{"echo local > local.txt"})
	third := repo.Commit(t, "main", "third", []gittest.File{{Path: "only.txt", Content: []byte("only\n")}})
	mustGitfs(t, root, "ws", "update", "job", "--fetch")
	r := runScript(t, ws, []string{"git rev-parse HEAD", "git status --porcelain", "git log --oneline -1 origin/main"})
	if !strings.Contains(r[0], third) {
		t.Errorf("HEAD after update: %s, want %s", r[0], third)
	}
	if r[1] != "$ git status --porcelain\n?? local.txt\n[exit 0]\n" {
		t.Errorf("status after update: %s", r[1])
	}
	if !strings.Contains(r[2], third[:7]) {
		t.Errorf("origin/main after update --fetch: %s", r[2])
	}
}

// treeStamp summarizes every file's path, mode, size and mtime below dirs.
func treeStamp(t *testing.T, dirs ...string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range dirs {
		filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if strings.Contains(p, string(filepath.Separator)+"contents") {
				return nil // a snapshot's contents file may be made meanwhile
			}
			fmt.Fprintf(&b, "%s %v %d %d\n", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
			return nil
		})
	}
	return b.String()
}

// TestGitFSMonitor: git status in a workspace asks gitfs what changed
// (core.fsmonitor) and sees every change made through the mount, also
// after a daemon restart (its old token then forces a full scan); once
// warm, it costs the daemon about as many requests at 20 times the files.
func TestGitFSMonitor(t *testing.T) {
	repo := gittest.NewRepo(t)
	small := repo.Commit(t, "small", "small", gittest.Generate(100, 3))
	large := repo.Commit(t, "large", "large", gittest.Generate(2000, 3))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	// On even with a git older than 2.43 (whose diff-index may misread
	// fsmonitor-valid entries; nothing here runs it).
	d := serve(t, root, "", "--fsmonitor", "on")
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", small)
	steps := []string{
		"git config core.fsmonitor >/dev/null && echo has-fsmonitor",
		"git status --porcelain",
		"echo change >> f000003.txt && echo new > new.txt && rm f000004.txt && mv d01 d01-moved && git status --porcelain",
		"git add -A && git status --porcelain",
	}
	got := runScript(t, ws, steps)
	want := []string{
		"$ " + steps[0] + "\nhas-fsmonitor\n[exit 0]\n",
		"$ " + steps[1] + "\n[exit 0]\n",
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("got:\n%s\nwant:\n%s", got[i], w)
		}
	}
	for _, s := range []string{" M f000003.txt", " D f000004.txt", "?? new.txt", "?? d01-moved/", " D d01/"} {
		if !strings.Contains(got[2], s) {
			t.Errorf("status after changes lacks %q:\n%s", s, got[2])
		}
	}
	// A restart: the token git kept names the old run.
	d.stop(t)
	d = serve(t, root, d.mnt, "--fsmonitor", "on")
	runScript(t, ws, []string{"echo again >> f000005.txt"})
	after := runScript(t, ws, []string{"git status --porcelain"})
	if !strings.Contains(after[0], "M  f000003.txt") || !strings.Contains(after[0], " M f000005.txt") {
		t.Errorf("status after a restart:\n%s", after[0])
	}
	// Requests of a warm git status, at 100 and 2000 files.
	requests := func(dir string) float64 {
		runScript(t, dir, []string{"git status --porcelain", "git status --porcelain"})
		before := fuseRequests(t, root)
		runScript(t, dir, []string{"git status --porcelain"})
		return fuseRequests(t, root) - before
	}
	big := wsCreate(t, root, "big", "--repo", "demo", "--rev", large)
	nSmall, nBig := requests(ws), requests(big)
	t.Logf("FUSE requests of a warm git status: %.0f at 100 files, %.0f at 2000", nSmall, nBig)
	if nBig > 2*nSmall+20 {
		t.Errorf("a warm git status costs %.0f requests at 2000 files against %.0f at 100: it grows with the tree", nBig, nSmall)
	}
}

// fuseRequests is the number of FUSE requests the daemon has answered.
func fuseRequests(t *testing.T, root string) float64 {
	t.Helper()
	var st struct {
		Metrics []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"metrics"`
	}
	out := mustGitfs(t, root, "stats", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("stats --json: %v: %s", err, out)
	}
	n := 0.0
	for _, m := range st.Metrics {
		if m.Name == "gitfs_fuse_request_duration_seconds" {
			n += m.Value
		}
	}
	if n == 0 {
		t.Fatalf("stats report no FUSE requests: %s", out)
	}
	return n
}

// TestGitFSMonitorWorktrees: the fsmonitor hook that .git/config names is
// shared by every linked worktree of the workspace. In one inside the
// workspace (.wt/feat) git must see its changes, as without the hook (the
// daemon's paths are the workspace's, not the worktree's); in one outside
// the mount, or a copy of the workspace, git scans everything and the hook
// says nothing (not a line of complaint on every git command).
func TestGitFSMonitorWorktrees(t *testing.T) {
	_, root := gitRepoFixture(t)
	serve(t, root, "", "--fsmonitor", "on")
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", "main")
	outside := filepath.Join(t.TempDir(), "outside")
	copied := filepath.Join(t.TempDir(), "copy")
	steps := []string{
		"git worktree add -q .wt/feat origin/feature && cd .wt/feat && git status --porcelain",
		"cd .wt/feat && echo change >> f000003.txt && echo new > new.txt && git status --porcelain",
		"cd .wt/feat && git add -A && git status --porcelain && git commit -q -m wt && git status --porcelain",
		"cd .wt/feat && echo again >> f000004.txt && git status --porcelain",
		"git worktree add -q " + outside + " origin/feature && cd " + outside + " && git status --porcelain && echo x >> f000003.txt && git status --porcelain",
		"cp -a . " + copied + " && cd " + copied + " && git status --porcelain --untracked-files=no",
	}
	want := []string{
		"",
		" M f000003.txt\n?? new.txt\n",
		"M  f000003.txt\nA  new.txt\n",
		" M f000004.txt\n",
		" M f000003.txt\n",
		"",
	}
	got := runScript(t, ws, steps)
	for i, s := range steps {
		if w := "$ " + s + "\n" + want[i] + "[exit 0]\n"; got[i] != w {
			t.Errorf("got:\n%s\nwant:\n%s", got[i], w)
		}
	}
}
