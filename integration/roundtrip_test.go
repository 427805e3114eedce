package integration

import (
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCheckoutRoundTrip: checkout of a commit equals git archive of it.
func TestCheckoutRoundTrip(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := append(gittest.Generate(300, 1),
		gittest.File{Path: "exec.sh", Content: []byte("#!/bin/sh\n"), Mode: "100755"},
		gittest.File{Path: "link", Content: []byte("exec.sh"), Mode: "120000"},
		gittest.File{Path: "dangling", Content: []byte("no/such/file"), Mode: "120000"},
		gittest.File{Path: "empty", Content: nil},
		gittest.File{Path: "sub/module", Content: []byte("1111111111111111111111111111111111111111"), Mode: "160000"},
		gittest.File{Path: "unicodé/файл.txt", Content: []byte("ü")},
	)
	repo.Commit(t, "main", "c1", files)
	gittest.Git(t, repo.Dir, "tag", "v1")
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "demo", "v1", out)
	want := gittest.Archive(t, repo.Dir, "v1")
	got := gittest.ReadDir(t, out)
	if d := gittest.Diff(want, got, 10); len(d) > 0 {
		t.Fatalf("checkout differs from git archive:\n%v", d)
	}
}
