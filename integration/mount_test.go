package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// mountFixture is a remote with main (tagged v1) and a mirror of it.
func mountFixture(t *testing.T, n int) (repo *gittest.Repo, root, commit string) {
	t.Helper()
	repo = gittest.NewRepo(t)
	files := append(gittest.Generate(n, 7),
		gittest.File{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: "100755"},
		gittest.File{Path: "link", Content: []byte("bin/run.sh"), Mode: "120000"},
		gittest.File{Path: "empty", Content: nil},
		gittest.File{Path: "sub/module", Content: []byte("1111111111111111111111111111111111111111"), Mode: "160000"},
	)
	commit = repo.Commit(t, "main", "c1", files)
	gittest.Git(t, repo.Dir, "tag", "v1")
	root = t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	return repo, root, commit
}

// TestMountWorkspaceAndBrowseEqualArchive: every file of a workspace and of
// each browse path equals git archive of its commit.
func TestMountWorkspaceAndBrowseEqualArchive(t *testing.T) {
	repo, root, commit := mountFixture(t, 400)
	d := serve(t, root, "")
	ws := wsCreate(t, root, "job1", "--repo", "demo", "--rev", "main")
	if ws != filepath.Join(d.mnt, "job1") {
		t.Fatalf("ws create printed %q, want %q", ws, filepath.Join(d.mnt, "job1"))
	}
	want := gittest.Archive(t, repo.Dir, "main")
	for _, dir := range []string{
		ws,
		filepath.Join(d.mnt, "@demo", "heads", "main"),
		filepath.Join(d.mnt, "@demo", "tags", "v1"),
		filepath.Join(d.mnt, "@demo", "commits", commit),
		filepath.Join(d.mnt, "@demo", "HEAD"),
	} {
		got := gittest.ReadDir(t, dir, ".git")
		if diff := gittest.Diff(want, got, 10); len(diff) > 0 {
			t.Errorf("%s differs from git archive:\n%s", dir, strings.Join(diff, "\n"))
		}
	}
	// Browse paths are read-only.
	err := os.WriteFile(filepath.Join(d.mnt, "@demo", "heads", "main", "x"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("write into a browse path: %v, want EROFS", err)
	}
	// A workspace is writable and status reports the change.
	if err := os.WriteFile(filepath.Join(ws, "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws, "empty")); err != nil {
		t.Fatal(err)
	}
	st := mustGitfs(t, root, "ws", "status", "job1")
	if !strings.Contains(st, "A  new.txt") || !strings.Contains(st, "D  empty") {
		t.Errorf("ws status = %q, want A new.txt and D empty", st)
	}
	list := mustGitfs(t, root, "ws", "list")
	if !strings.Contains(list, "job1") || !strings.Contains(list, commit[:12]) {
		t.Errorf("ws list = %q", list)
	}
	mustGitfs(t, root, "ws", "rm", "job1")
	if _, err := os.Stat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace still visible after rm: %v", err)
	}
}

// TestMountBrowseDiffTags: diff -r of two tags' browse paths reports the
// one file that changed; a file both tags hold unchanged is one file (same
// inode number and times, which is what lets diff skip it), a changed one
// shows another inode and mtime (rsync's quick check), and a file that
// .gitattributes converts is each tag's own and reads converted. In both
// of the daemon's modes. With --browse-file-times=commit each tag's files
// are its own, with the commit's time, and diff -r still finds the one.
func TestMountBrowseDiffTags(t *testing.T) {
	for _, mode := range []string{"default", "--open-handles", "--browse-file-times=commit"} {
		shared := mode != "--browse-file-times=commit"
		t.Run(mode, func(t *testing.T) {
			repo := gittest.NewRepo(t)
			files := append(gittest.Generate(60, 11),
				gittest.File{Path: ".gitattributes", Content: []byte("*.crlf text eol=crlf\n")},
				gittest.File{Path: "notes.crlf", Content: []byte("one\ntwo\n")},
				gittest.File{Path: "same.txt", Content: []byte("aaaa\n")})
			repo.Commit(t, "main", "c1", files)
			gittest.Git(t, repo.Dir, "tag", "v1")
			changed := append([]gittest.File(nil), files...)
			changed[len(changed)-1] = gittest.File{Path: "same.txt", Content: []byte("bbbb\n")} // same size
			repo.Commit(t, "main", "c2", changed)
			gittest.Git(t, repo.Dir, "tag", "v2")
			root := t.TempDir()
			mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
			var extra []string
			if mode != "default" {
				extra = append(extra, mode)
			}
			d := serve(t, root, "", extra...)
			v1, v2 := filepath.Join(d.mnt, "@demo", "tags", "v1"), filepath.Join(d.mnt, "@demo", "tags", "v2")
			out, err := exec.Command("diff", "-rq", v1, v2).CombinedOutput()
			if want := "Files " + v1 + "/same.txt and " + v2 + "/same.txt differ\n"; string(out) != want {
				t.Errorf("diff -rq of two tags: %v\n%s\nwant %q", err, out, want)
			}
			// ino and mtime of p (os.Stat: this file builds for macOS too).
			stat := func(p string) (uint64, time.Time) {
				t.Helper()
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				return uint64(fi.Sys().(*syscall.Stat_t).Ino), fi.ModTime()
			}
			ia, ta := stat(filepath.Join(v1, files[0].Path))
			ib, tb := stat(filepath.Join(v2, files[0].Path))
			if shared && (ia != ib || !ta.Equal(tb)) {
				t.Errorf("%s, unchanged: inode %d and %d, mtime %v and %v, want one file", files[0].Path, ia, ib, ta, tb)
			}
			if commitTime := time.Unix(1704164645, 0); !shared && (ia == ib || !ta.Equal(commitTime)) {
				t.Errorf("%s, unchanged, commit times: inode %d and %d, mtime %v, want two files with the commit's time %v", files[0].Path, ia, ib, ta, commitTime)
			}
			ia, ta = stat(filepath.Join(v1, "same.txt"))
			ib, tb = stat(filepath.Join(v2, "same.txt"))
			if ia == ib || (shared && ta.Unix() == tb.Unix()) {
				t.Errorf("same.txt, changed, same size: inode %d and %d, mtime %v and %v, want both different", ia, ib, ta, tb)
			}
			ia, _ = stat(filepath.Join(v1, "notes.crlf"))
			ib, _ = stat(filepath.Join(v2, "notes.crlf"))
			if ia == ib {
				t.Errorf("notes.crlf, converted: one inode %d in both tags, want each tag's own", ia)
			}
			if got, err := os.ReadFile(filepath.Join(v2, "notes.crlf")); err != nil || string(got) != "one\r\ntwo\r\n" {
				t.Errorf("notes.crlf reads %q (%v), want it converted", got, err)
			}
			if err := os.WriteFile(filepath.Join(v2, files[0].Path), []byte("x"), 0o644); err == nil {
				t.Errorf("write to a shared browse file succeeded")
			}
			if got, err := os.ReadFile(filepath.Join(v1, files[0].Path)); err != nil || string(got) != string(files[0].Content) {
				t.Errorf("%s after a write was refused: %d bytes (%v), want %d", files[0].Path, len(got), err, len(files[0].Content))
			}
		})
	}
}

// TestMountRestartKeepsChanges: kill -9 the daemon; a restart brings every
// change back, and unchanged files keep their inode numbers.
func TestMountRestartKeepsChanges(t *testing.T) {
	_, root, _ := mountFixture(t, 100)
	d := serve(t, root, "")
	ws := wsCreate(t, root, "job1", "--repo", "demo", "--rev", "main")
	p := func(s string) string { return filepath.Join(ws, s) }
	inode := func(path string) uint64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Lstat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	unchanged := []string{"bin/run.sh", "link", "f000001.txt", "d01/f000020.txt"}
	inodes := map[string]uint64{}
	for _, u := range unchanged {
		inodes[u] = inode(p(u))
	}
	if err := os.WriteFile(p("new.txt"), []byte("written before the crash"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("f000002.txt"), []byte("modified"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p("f000003.txt"), p("renamed.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p("f000004.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("newdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	d.kill9()
	d2 := serve(t, root, d.mnt)
	_ = d2
	check := func(path, want string) {
		t.Helper()
		b, err := os.ReadFile(p(path))
		if err != nil || string(b) != want {
			t.Errorf("%s after restart: %q, %v; want %q", path, b, err, want)
		}
	}
	check("new.txt", "written before the crash")
	check("f000002.txt", "modified")
	if _, err := os.Stat(p("renamed.txt")); err != nil {
		t.Errorf("renamed file lost: %v", err)
	}
	for _, gone := range []string{"f000003.txt", "f000004.txt"} {
		if _, err := os.Lstat(p(gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s came back after restart: %v", gone, err)
		}
	}
	if st, err := os.Stat(p("newdir")); err != nil || !st.IsDir() {
		t.Errorf("newdir lost: %v", err)
	}
	for _, u := range unchanged {
		if got := inode(p(u)); got != inodes[u] {
			t.Errorf("inode of %s changed across restart: %d -> %d", u, inodes[u], got)
		}
	}
}

// TestMountBadInput: clear errors, non-zero exit, nothing changed.
func TestMountBadInput(t *testing.T) {
	_, root, _ := mountFixture(t, 10)
	if r := gitfs(t, root, "ws", "list"); r.code == 0 || !strings.Contains(r.stderr, "gitfs is not running") {
		t.Errorf("ws list without a daemon: exit %d, %q", r.code, r.stderr)
	}
	d := serve(t, root, "")
	wsCreate(t, root, "ok", "--repo", "demo", "--rev", "main")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"dotdot", []string{"ws", "create", "../x", "--repo", "demo", "--rev", "main"}, "invalid"},
		{"slash", []string{"ws", "create", "a/b", "--repo", "demo", "--rev", "main"}, "invalid"},
		{"at", []string{"ws", "create", "@x", "--repo", "demo", "--rev", "main"}, "invalid"},
		{"empty", []string{"ws", "create", "", "--repo", "demo", "--rev", "main"}, "invalid"},
		{"unknown repo", []string{"ws", "create", "x1", "--repo", "nope", "--rev", "main"}, "nope"},
		{"unknown rev", []string{"ws", "create", "x2", "--repo", "demo", "--rev", "nope"}, "unknown revision"},
		{"exists", []string{"ws", "create", "ok", "--repo", "demo", "--rev", "main"}, "exists"},
		{"rm missing", []string{"ws", "rm", "missing"}, "missing"},
		{"status missing", []string{"ws", "status", "missing"}, "missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := gitfs(t, root, tc.args...)
			if r.code == 0 {
				t.Fatalf("exit 0, want failure; stdout %q", r.stdout)
			}
			if !strings.Contains(strings.ToLower(r.stderr), strings.ToLower(tc.want)) {
				t.Errorf("stderr %q does not mention %q", r.stderr, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 0 && !strings.Contains(r.stderr, "Usage") {
				t.Errorf("error is %d lines, want one: %q", n+1, r.stderr)
			}
		})
	}
	entries, _ := os.ReadDir(d.mnt)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "@demo,ok" && strings.Join(names, ",") != "ok" {
		t.Errorf("mount root holds %v after bad input, want only ok (and @demo)", names)
	}
	ws, _ := filepath.Glob(filepath.Join(root, "workspaces", "*"))
	if len(ws) != 1 {
		t.Errorf("workspaces on disk: %v, want only ok", ws)
	}
}
