package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/snapshot"
)

// TestVerifyDiscards: a commit whose tree names a blob the mirror
// does not have fails verification: nothing is published, no temp is left,
// and asking again fails again (nothing unverified is reused).
func TestVerifyDiscards(t *testing.T) {
	root, _, _ := setupMirror(t)
	mirrorDir := filepath.Join(root, "mirrors", "demo.git")
	tree := gitIn(t, mirrorDir, "100644 blob "+strings.Repeat("ab", 20)+"\tghost.txt\n", "mktree", "--missing")
	bad := gitIn(t, mirrorDir, "bad\n", "commit-tree", tree)
	for i := 0; i < 2; i++ {
		_, _, err := openStore(t, root, &syncLog{}).Get(context.Background(), "demo", bad)
		if err == nil || !strings.Contains(err.Error(), "verification") {
			t.Fatalf("Get of a commit with a missing blob: %v", err)
		}
		if snapshot.Published(root, bad) {
			t.Fatal("unverified snapshot published")
		}
		noTemps(t, root)
	}
	_, _, err := openStore(t, root, &syncLog{}).Get(context.Background(), "demo", "abc")
	if err == nil {
		t.Fatal("Get of a short id succeeded")
	}
}

// TestBuildRefusesHostileTrees: a commit whose tree breaks a tree rule
// anywhere fails its build with an error naming the path and the rule;
// nothing is published under ROOT/snapshots/<commit>, no temp is left, and
// asking again refuses again.
func TestBuildRefusesHostileTrees(t *testing.T) {
	root, _, _ := setupMirror(t)
	h := newHostileObjects(t, filepath.Join(root, "mirrors", "demo.git"))
	blob := h.blob("pwned\n")
	hook := h.blob("#!/bin/sh\ntouch /tmp/pwned\n")
	f := func(name string) hEntry { return hEntry{"100644", name, blob} }
	d := func(name string, entries ...hEntry) hEntry { return hEntry{"40000", name, h.tree(entries...)} }
	dotgit := func(name string) hEntry {
		return d(name, f("config"), d("hooks", hEntry{"100755", "post-checkout", hook}))
	}
	chain := func(name string, levels int, bottom hEntry) hEntry {
		e := bottom
		for i := 0; i < levels; i++ {
			e = d(name, e)
		}
		return e
	}
	var big []hEntry
	for i := 0; i <= 100; i++ {
		big = append(big, f(fmt.Sprintf("f%03d", i)))
	}
	// A subtree of 30 levels met first near the root, then again under 1000
	// levels: only a depth counted through repeated subtrees finds it.
	shared := chain("t", 29, f("bottom"))

	tests := []struct {
		name     string
		root     []hEntry
		wantPath string
		wantRule string
	}{
		{"dotgit", []hEntry{f("README"), dotgit(".git")}, ".git", snapshot.RuleDotGit},
		{"dotgit nested", []hEntry{d("a", d("b", dotgit(".git")))}, "a/b/.git", snapshot.RuleDotGit},
		{"dotgit alias", []hEntry{dotgit(".GIT")}, ".GIT", snapshot.RuleDotGit},
		{"dotdot", []hEntry{d("..", f("pwned"))}, "..", snapshot.RuleDot},
		{"dot", []hEntry{f(".")}, ".", snapshot.RuleDot},
		{"slash", []hEntry{f("a/b")}, "a/b", snapshot.RuleSlash},
		{"duplicate files", []hEntry{f("x"), f("x")}, "x", snapshot.RuleDuplicate},
		{"duplicate file and dir", []hEntry{f("a"), f("a-b"), d("a", f("pwned"))}, "a", snapshot.RuleDuplicate},
		{"mis-sorted", []hEntry{d("sub", f("b"), f("a"))}, "sub/a", snapshot.RuleOrder},
		{"symlinked gitmodules", []hEntry{{"120000", ".gitmodules", blob}}, ".gitmodules", snapshot.RuleGitmodules},
		{"more than MaxTreeEntries", []hEntry{d("big", big...)}, "big/f100", "more than 100 entries"},
		{"depth", []hEntry{chain("d", 1030, f("bottom"))}, strings.Repeat("d/", 1024) + "d", "deeper than 1024"},
		{"depth through a repeated subtree", []hEntry{{"40000", "a", shared.id}, chain("z", 1, chain("d", 1000, shared))},
			"z" + strings.Repeat("/d", 1000) + strings.Repeat("/t", 24), "deeper than 1024"},
	}
	commits := make([]string, len(tests))
	for i, tc := range tests {
		commits[i] = h.commit(h.tree(tc.root...), tc.name)
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			commit := commits[i]
			for attempt := 0; attempt < 2; attempt++ {
				_, _, err := hostileStore(t, root, snapshot.Options{MaxTreeEntries: 100}).Get(context.Background(), "demo", commit)
				if err == nil {
					t.Fatal("hostile tree built")
				}
				msg := err.Error()
				if attempt == 0 {
					t.Logf("%.300s", msg)
				}
				var re *snapshot.RefusedError
				if !errors.As(err, &re) {
					t.Fatalf("not a refusal: %v", err)
				}
				if re.Path != tc.wantPath || !strings.Contains(re.Rule, tc.wantRule) {
					t.Errorf("refused %q for %q, want %q for %q", re.Path, re.Rule, tc.wantPath, tc.wantRule)
				}
				if !strings.Contains(msg, "failed verification, discarded") ||
					!strings.Contains(msg, fmt.Sprintf("path %q", tc.wantPath)) || strings.Contains(msg, "\n") {
					t.Errorf("error is not one line naming the path: %.300s", msg)
				}
				if _, err := os.Lstat(filepath.Join(root, "snapshots", commit)); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("snapshot dir published: %v", err)
				}
				if snapshot.Published(root, commit) {
					t.Fatal("hostile snapshot published")
				}
				noTemps(t, root)
			}
		})
	}
	// The same store builds a clean commit sharing these objects.
	clean := h.commit(h.tree(f("README"), d("sub", f("a"), f("b")), hEntry{"40000", "t", shared.id}), "clean")
	if _, release, err := hostileStore(t, root, snapshot.Options{MaxTreeEntries: 100}).Get(context.Background(), "demo", clean); err != nil {
		t.Fatalf("clean commit: %v", err)
	} else {
		release()
	}
}
