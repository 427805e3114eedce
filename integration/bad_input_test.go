package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestBadInputFailsCleanly: unknown repositories and revisions, bad URLs, an
// unusable root and unsafe repository names each give one clear line on
// stderr and exit 1, and create nothing: no mirror, no snapshot, no temp,
// no output directory.
func TestBadInputFailsCleanly(t *testing.T) {
	e := newCLIEnv(t)
	repo, _ := newRemote(t, 10, 13)
	root := t.TempDir()
	e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
	notRepo := t.TempDir()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	badRoot := filepath.Join(file, "root") // a root under a regular file
	oldGit := t.TempDir()                  // a git too old for merge-tree --write-tree
	if err := os.WriteFile(filepath.Join(oldGit, "git"), []byte("#!/bin/sh\necho git version 2.30.2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	oldGitEnv := []string{"PATH=" + oldGit + ":" + os.Getenv("PATH")}
	outs := t.TempDir()
	out := filepath.Join(outs, "out")
	const (
		unknownRepo = "no such repository"
		unknownRev  = "unknown revision"
		badName     = "invalid repository name"
		badRootMsg  = "is unusable"
	)
	tests := []struct {
		name string
		root string
		args []string
		want string   // in the error line
		env  []string // extra environment
	}{
		{"unknown repo/rev-parse", root, []string{"rev-parse", "nope", "main"}, unknownRepo, nil},
		{"unknown repo/checkout", root, []string{"checkout", "nope", "main", out}, unknownRepo, nil},
		{"unknown repo/fetch", root, []string{"repo", "fetch", "nope"}, unknownRepo, nil},
		{"unknown rev/rev-parse", root, []string{"rev-parse", "demo", "nope"}, unknownRev, nil},
		{"unknown rev/checkout", root, []string{"checkout", "demo", "nope", out}, unknownRev, nil},
		{"unknown full sha/checkout", root, []string{"checkout", "demo", strings.Repeat("1", 40), out}, unknownRev, nil},
		{"option as rev", root, []string{"rev-parse", "demo", "--", "--all"}, unknownRev, nil},
		{"bad URL/missing path", root, []string{"repo", "add", "x", filepath.Join(notRepo, "missing")}, "no such path", nil},
		{"bad URL/file URL to nothing", root, []string{"repo", "add", "x", "file://" + filepath.Join(notRepo, "missing.git")}, "clone", nil},
		{"bad URL/not a repository", root, []string{"repo", "add", "x", notRepo}, "clone", nil},
		{"bad URL/empty", root, []string{"repo", "add", "x", ""}, "empty URL", nil},
		{"bad URL/other URL for an existing name", root, []string{"repo", "add", "demo", notRepo}, "already exists", nil},
		{"unusable root/add", badRoot, []string{"repo", "add", "demo", repo.Dir}, badRootMsg, nil},
		{"unusable root/list", badRoot, []string{"repo", "list"}, badRootMsg, nil},
		{"unusable root/checkout", badRoot, []string{"checkout", "demo", "main", out}, badRootMsg, nil},
		{"unusable root/gc", badRoot, []string{"gc"}, badRootMsg, nil},
		{"name/slash", root, []string{"repo", "add", "a/b", repo.Dir}, badName, nil},
		{"name/dotdot", root, []string{"repo", "add", "..", repo.Dir}, badName, nil},
		{"name/dot", root, []string{"repo", "add", ".", repo.Dir}, badName, nil},
		{"name/escape", root, []string{"repo", "add", "../x", repo.Dir}, badName, nil},
		{"name/empty", root, []string{"repo", "add", "", repo.Dir}, badName, nil},
		{"name/rev-parse", root, []string{"rev-parse", "a/b", "main"}, badName, nil},
		{"name/checkout", root, []string{"checkout", "..", "main", out}, badName, nil},
		{"name/fetch", root, []string{"repo", "fetch", "../demo"}, badName, nil},
		{"git too old/checkout", root, []string{"checkout", "demo", "main", out}, "needs git >= 2.38", oldGitEnv},
		{"git too old/add", root, []string{"repo", "add", "x", repo.Dir}, "needs git >= 2.38", oldGitEnv},
	}
	before := rootState(t, root)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(t, tc.env, tc.root, tc.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q: want one line starting 'gitfs ' that says %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
			if after := rootState(t, root); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("root changed:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := os.Lstat(out); !os.IsNotExist(err) {
				t.Errorf("%s created", out)
				os.RemoveAll(out)
			}
			if entries, _ := os.ReadDir(outs); len(entries) > 0 {
				t.Errorf("left beside the output: %v", entries)
			}
			if st, err := os.Stat(file); err != nil || st.IsDir() {
				t.Errorf("the file under the unusable root changed: %v", err)
			}
		})
	}
}

// rootState lists what is under root, except lock files (locks/ holds
// empty flock files, created on first use of a name and never state).
func rootState(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "locks" && d.IsDir() {
			return filepath.SkipDir
		}
		if strings.HasPrefix(rel, filepath.Join("mirrors", "demo.git")+"/") {
			return nil // the mirror's own files: checked through the listing of mirrors/
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}
