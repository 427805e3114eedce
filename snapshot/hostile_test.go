package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// hostileObjects writes hand-made objects straight into a mirror's object
// store, as if fetch-time fsck had been bypassed: git's own tools refuse to
// make most of these trees. Ids are computed here, and everything is
// written by one git call at flush.
type hostileObjects struct {
	t      *testing.T
	mirror string
	dir    string
	paths  map[string][]string // by object type
	n      int
}

func newHostileObjects(t *testing.T, mirrorDir string) *hostileObjects {
	return &hostileObjects{t: t, mirror: mirrorDir, dir: t.TempDir(), paths: map[string][]string{}}
}

func (h *hostileObjects) write(typ string, body []byte) string {
	h.n++
	p := filepath.Join(h.dir, fmt.Sprint(h.n))
	if err := os.WriteFile(p, body, 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.paths[typ] = append(h.paths[typ], p)
	s := sha1.New()
	fmt.Fprintf(s, "%s %d\x00", typ, len(body))
	s.Write(body)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *hostileObjects) blob(content string) string { return h.write("blob", []byte(content)) }

// tree writes a tree of entries exactly as given: any names, any order.
func (h *hostileObjects) tree(entries ...hEntry) string {
	var b bytes.Buffer
	for _, e := range entries {
		raw, err := hex.DecodeString(e.id)
		if err != nil || len(raw) != 20 {
			h.t.Fatalf("bad id %q", e.id)
		}
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(raw)
	}
	return h.write("tree", b.Bytes())
}

// flush writes the objects into the mirror (loose: the build packs them).
func (h *hostileObjects) flush() {
	h.t.Helper()
	for typ, paths := range h.paths {
		cmd := exec.Command("git", "--git-dir", h.mirror, "hash-object", "-t", typ, "--literally", "-w", "--stdin-paths")
		cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			h.t.Fatalf("hash-object: %v: %s", err, out)
		}
	}
	h.paths = map[string][]string{}
}

// commit writes (at once) a commit of tree.
func (h *hostileObjects) commit(tree, msg string) string {
	h.flush()
	return fndGitIn(h.t, h.mirror, "", "commit-tree", tree, "-m", msg)
}

type hEntry struct{ mode, name, id string }

// hostileStore opens root's store with opts, as a new process would.
func hostileStore(t *testing.T, root string, opts snapshot.Options) *snapshot.Store {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, lg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, lg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBuildRefusesHostileTrees: a commit whose tree breaks a tree rule
// anywhere fails its build with an error naming the path and the rule;
// nothing is published under ROOT/snapshots/<commit>, no temp is left, and
// asking again refuses again.
func TestBuildRefusesHostileTrees(t *testing.T) {
	root, _, _ := fndSetup(t)
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
				fndNoTemps(t, root)
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

// TestTreeRefusesHostileTreeOfPublishedSnapshot: a snapshot published before
// its trees were checked (here: a valid snapshot whose packs also hold bad
// trees no build walk reached) refuses each bad tree when it is read, every
// time (a refusal is not cached), naming the tree and the entry, and keeps
// serving its good trees.
func TestTreeRefusesHostileTreeOfPublishedSnapshot(t *testing.T) {
	root, commit, _ := fndSetup(t)
	h := newHostileObjects(t, filepath.Join(root, "mirrors", "demo.git"))
	blob := h.blob("x")
	bad := []struct {
		tree     string
		wantName string
		wantRule string
	}{
		{h.tree(hEntry{"40000", ".git", h.tree(hEntry{"100644", "config", blob})}), ".git", snapshot.RuleDotGit},
		{h.tree(hEntry{"100644", "..", blob}), "..", snapshot.RuleDot},
		{h.tree(hEntry{"100644", "b", blob}, hEntry{"100644", "a", blob}), "a", snapshot.RuleOrder},
		{h.tree(hEntry{"100644", "x", blob}, hEntry{"100644", "x", blob}), "x", snapshot.RuleDuplicate},
	}
	h.flush() // loose in the mirror: the build packs them into the snapshot
	snap, release, err := hostileStore(t, root, snapshot.Options{}).Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, b := range bad {
		id := snapshot.ID(mustHash(t, b.tree))
		for i := 0; i < 2; i++ {
			_, err := snap.Tree(id)
			var re *snapshot.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("tree with %q served: err = %v", b.wantName, err)
			}
			if re.Path != b.wantName || re.Rule != b.wantRule || re.Tree != id {
				t.Errorf("refused %q in %s for %q, want %q in %s for %q", re.Path, re.Tree, re.Rule, b.wantName, id, b.wantRule)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", b.wantName)) || !strings.Contains(msg, id.String()) {
				t.Errorf("error does not name the entry and tree: %s", msg)
			}
		}
	}
	if _, err := snap.Lookup("d01"); err != nil {
		t.Errorf("good tree after refusals: %v", err)
	}
}

func mustHash(t *testing.T, s string) [20]byte {
	t.Helper()
	var id [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		t.Fatalf("bad id %q", s)
	}
	copy(id[:], b)
	return id
}
