//go:build linux

package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestGitAttributesMatchClone: with .gitattributes that convert (eol=crlf,
// text, ident, working-tree-encoding) and one naming a filter driver, every
// file of a workspace and of `gitfs checkout` is what a clone writes, and
// git status is clean in both.
func TestGitAttributesMatchClone(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := []gittest.File{
		{Path: ".gitattributes", Content: []byte("*.bat eol=crlf\n*.txt text\n*.c ident\n*.u16 working-tree-encoding=UTF-16LE-BOM\n*.bin filter=lfs -text\ndocs/** eol=crlf\n")},
		{Path: "run.bat", Content: []byte("@echo off\necho one\necho two\n")},
		{Path: "notes.txt", Content: []byte("line one\nline two\n")},
		{Path: "main.c", Content: []byte("/* $Id$ */\nint main(void) { return 0; }\n")},
		{Path: "hello.u16", Content: []byte("héllo\nwörld\n")},
		{Path: "big.bin", Content: []byte("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 3\n")},
		{Path: "docs/guide.md", Content: []byte("# Guide\n\ntext\n")},
		{Path: "docs/.gitattributes", Content: []byte("*.md -text\n")},
		{Path: "plain.go", Content: []byte("package main\n")},
	}
	commit := repo.Commit(t, "main", "attrs", files)
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	ws := wsCreate(t, root, "job", "--repo", "demo", "--rev", "main")
	clone := cloneAt(t, repo, commit)
	out := filepath.Join(t.TempDir(), "checkout")
	mustGitfs(t, root, "checkout", "--git", "demo", "main", out)
	want := gittest.ReadDir(t, clone, ".git")
	for name, dir := range map[string]string{"workspace": ws, "checkout": out} {
		if d := gittest.Diff(want, gittest.ReadDir(t, dir, ".git"), 10); len(d) > 0 {
			t.Errorf("%s differs from a clone:\n%s", name, strings.Join(d, "\n"))
		}
		if st := runScript(t, dir, []string{"git status --porcelain"}); st[0] != "$ git status --porcelain\n[exit 0]\n" {
			t.Errorf("%s: %s", name, st[0])
		}
	}
	// The conversions really happened (the test would pass on raw blobs
	// if the clone did not convert).
	b, err := os.ReadFile(filepath.Join(ws, "run.bat"))
	if err != nil || !strings.Contains(string(b), "\r\n") {
		t.Errorf("run.bat in the workspace: %q %v, want CRLF line ends", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "main.c")); !strings.Contains(string(b), "$Id: ") {
		t.Errorf("main.c in the workspace: %q, want $Id$ expanded", b)
	}
	// A changed converted file is a change; undoing it is none.
	orig, _ := os.ReadFile(filepath.Join(ws, "run.bat"))
	if err := os.WriteFile(filepath.Join(ws, "run.bat"), append(orig, "echo three\r\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runScript(t, ws, []string{"git status --porcelain"}); !strings.Contains(r[0], " M run.bat") {
		t.Errorf("after a change: %s", r[0])
	}
	if err := os.WriteFile(filepath.Join(ws, "run.bat"), orig, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := mustGitfs(t, root, "ws", "status", "job"); strings.Contains(st, "run.bat") {
		t.Errorf("ws status after restoring a converted file: %q", st)
	}
}
