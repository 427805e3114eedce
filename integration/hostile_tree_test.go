package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/snapshot"
)

// TestHostileTreeRefused: branches whose trees hold a ".git" directory (with
// a config and a hook), a ".." directory or a duplicate name, written
// straight into the mirror's object store as if fetch-time fsck had been
// bypassed, are never served: `ws create`, a browse path and `checkout` each
// fail with one line naming the path and the rule, and nothing is made.
func TestHostileTreeRefused(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "clean", []gittest.File{{Path: "README", Content: []byte("clean\n")}})
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "hostile", repo.Dir)
	mirror := filepath.Join(root, "mirrors", "hostile.git")

	canary := filepath.Join(t.TempDir(), "hook-ran")
	blob := matWriteObject(t, mirror, "blob", []byte("pwned\n"))
	hook := matWriteObject(t, mirror, "blob", []byte("#!/bin/sh\ntouch "+canary+"\n"))
	config := matWriteObject(t, mirror, "blob", []byte("[core]\n\tfsmonitor = .git/hooks/post-checkout\n"))
	tree := func(entries ...matTreeEntry) string {
		return matWriteObject(t, mirror, "tree", matRawTree(t, entries))
	}
	dotGit := tree(
		matTreeEntry{"100644", "config", config},
		matTreeEntry{"40000", "hooks", tree(matTreeEntry{"100755", "post-checkout", hook})},
	)
	sub := tree(matTreeEntry{"100644", "pwned", blob})
	readme := matTreeEntry{"100644", "README", blob}
	cases := []struct {
		name, tree, path, rule string
	}{
		// All three in one tree: ".." sorts first and is named.
		{"all", tree(matTreeEntry{"40000", "..", sub}, matTreeEntry{"40000", ".git", dotGit}, readme,
			matTreeEntry{"100644", "x", blob}, matTreeEntry{"100644", "x", blob}), "..", snapshot.RuleDot},
		{"dotgit", tree(readme, matTreeEntry{"40000", "src", tree(matTreeEntry{"40000", ".git", dotGit})}), "src/.git", snapshot.RuleDotGit},
		{"dotdot", tree(readme, matTreeEntry{"40000", "..", sub}), "..", snapshot.RuleDot},
		// A file "a" and a directory "a", apart in git order.
		{"duplicate", tree(readme, matTreeEntry{"100644", "a", blob}, matTreeEntry{"100644", "a-b", blob},
			matTreeEntry{"40000", "a", sub}), "a", snapshot.RuleDuplicate},
	}
	for _, tc := range cases {
		commit := gittest.Git(t, mirror, "commit-tree", tc.tree, "-m", tc.name)
		gittest.Git(t, mirror, "update-ref", "refs/heads/hostile-"+tc.name, commit)
	}

	d := serve(t, root, "")
	outs := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			branch := "hostile-" + tc.name
			refusal := func(what string, r result) {
				t.Helper()
				msg := strings.TrimSpace(r.stderr)
				if r.code == 0 {
					t.Errorf("%s of a hostile tree succeeded: %q", what, r.stdout)
					return
				}
				if !isOneErrorLine(r.stderr) || !strings.Contains(msg, fmt.Sprintf("path %q", tc.path)) || !strings.Contains(msg, tc.rule) {
					t.Errorf("%s: stderr is not one line naming path %q and rule %q: %q", what, tc.path, tc.rule, msg)
				}
			}

			ws := fmt.Sprintf("hostile-ws-%d", i)
			refusal("ws create", gitfs(t, root, "ws", "create", ws, "--repo", "hostile", "--rev", branch))
			if _, err := os.Lstat(filepath.Join(d.mnt, ws)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused workspace is in the mount: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "workspaces", ws)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused workspace is on disk: %v", err)
			}

			browse := filepath.Join(d.mnt, "@hostile", "heads", branch)
			if entries, err := os.ReadDir(browse); !errors.Is(err, syscall.EIO) {
				t.Errorf("ls %s: %d entries, err %v; want EIO", browse, len(entries), err)
			}

			out := filepath.Join(outs, tc.name)
			refusal("checkout", gitfs(t, root, "checkout", "hostile", branch, out))
			if _, err := os.Lstat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("checkout target exists after a refusal: %v", err)
			}

			commit := strings.TrimSpace(mustGitfs(t, root, "rev-parse", "hostile", branch))
			if snapshot.Published(root, commit) {
				t.Errorf("snapshot of the hostile commit published")
			}
		})
	}
	if !strings.Contains(d.stderr.String(), "refused unsafe tree") {
		t.Errorf("the daemon did not log why the browse path failed: %.2000s", d.stderr.String())
	}
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("the tree's hook ran")
	}
	// The clean branch is served as ever.
	if b, err := os.ReadFile(filepath.Join(d.mnt, "@hostile", "heads", "main", "README")); err != nil || string(b) != "clean\n" {
		t.Errorf("clean branch: %q, %v", b, err)
	}
	requireNoTemps(t, root, outs)
}
