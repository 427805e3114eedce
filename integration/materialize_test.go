package integration

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestMatCheckoutEqualsArchive: gitfs checkout of generated repos and edge
// cases equals git archive of the same commit.
func TestMatCheckoutEqualsArchive(t *testing.T) {
	deep := strings.Repeat("deep/", 150) + "bottom.txt"
	big := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz\n"), (200<<20)/37+1)[:200<<20]
	if testing.Short() {
		big = big[:8<<20]
	}
	cases := []struct {
		name  string
		files []gittest.File
	}{
		{"generated", gittest.Generate(2000, 3)},
		{"edge cases", []gittest.File{
			{Path: "empty", Content: nil},
			{Path: "dir/empty2", Content: nil},
			{Path: "bin/tool", Content: []byte("#!/bin/sh\necho hi\n"), Mode: "100755"},
			{Path: "bin/link-to-tool", Content: []byte("tool"), Mode: "120000"},
			{Path: "abs-link", Content: []byte("/etc/hostname"), Mode: "120000"},
			{Path: "dangling", Content: []byte("no/such/file"), Mode: "120000"},
			{Path: "up-link", Content: []byte("../../.."), Mode: "120000"},
			{Path: deep, Content: []byte("deep\n")},
			{Path: "unicodé/日本語/файл.txt", Content: []byte("ü\n")},
			{Path: "spaces in name/and\ttab", Content: []byte("x")},
			{Path: ".github/workflows/ci.yml", Content: []byte("on: push\n")},
			{Path: ".gitignore", Content: []byte("*.o\n")},
			{Path: "big/blob.bin", Content: big},
			{Path: "vendor/sub", Content: []byte("1111111111111111111111111111111111111111"), Mode: "160000"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := gittest.NewRepo(t)
			commit := repo.Commit(t, "main", tc.name, tc.files)
			root := t.TempDir()
			mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
			want := gittest.Archive(t, repo.Dir, commit)
			blobs := distinctBlobs(t, repo.Dir, commit)
			// The first run fills the blob store where the target has
			// reflinks (else streams from the packs and stores nothing),
			// the second copies from the store the daemon filled, the
			// third (with the store emptied and --no-inflate) streams
			// from the packs and leaves the store alone.
			outs := t.TempDir()
			first := 0
			if checkoutFillsStore(t, root, outs) {
				first = blobs
			}
			for _, run := range []struct {
				name   string
				args   []string
				stored int // blobs in the store afterwards
			}{
				{"first", nil, first},
				{"second (from the store)", nil, blobs},
				{"--no-inflate", []string{"--no-inflate"}, 0},
			} {
				switch run.name {
				case "second (from the store)":
					fillBlobStore(t, root, "demo", commit)
				case "--no-inflate":
					emptyBlobStore(t, root)
				}
				out := filepath.Join(outs, strings.Fields(run.name)[0])
				mustGitfs(t, root, append([]string{"checkout", "demo", commit, out, "--workers", "3"}, run.args...)...)
				got := gittest.ReadDir(t, out)
				if d := gittest.Diff(want, got, 10); len(d) > 0 {
					t.Fatalf("%s checkout differs from git archive:\n%s", run.name, strings.Join(d, "\n"))
				}
				if n := storedBlobs(t, root); n != run.stored {
					t.Fatalf("after the %s checkout: %d blobs stored, want %d", run.name, n, run.stored)
				}
			}
		})
	}
	t.Run("empty tree", func(t *testing.T) {
		repo := gittest.NewRepo(t)
		repo.Commit(t, "main", "first", []gittest.File{{Path: "a", Content: []byte("a")}})
		empty := gittest.Git(t, repo.Dir, "hash-object", "-t", "tree", "-w", "--stdin")
		commit := gittest.Git(t, repo.Dir, "commit-tree", empty, "-m", "empty")
		gittest.Git(t, repo.Dir, "update-ref", "refs/heads/empty", commit)
		root := t.TempDir()
		mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
		out := filepath.Join(t.TempDir(), "out")
		mustGitfs(t, root, "checkout", "demo", "empty", out)
		if entries, err := os.ReadDir(out); err != nil || len(entries) != 0 {
			t.Fatalf("empty tree: %v, %v", entries, err)
		}
	})
}

// matTreeEntry is one raw entry of a hand-made tree object.
type matTreeEntry struct {
	mode, name, sha string
}

// matRawTree encodes a tree object's body exactly as given: any names, any
// order, duplicates; git's own tools would refuse to make most of these.
func matRawTree(t testing.TB, entries []matTreeEntry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		raw, err := hex.DecodeString(e.sha)
		if err != nil || len(raw) != 20 {
			t.Fatalf("bad sha %q", e.sha)
		}
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(raw)
	}
	return b.Bytes()
}

func matWriteObject(t testing.TB, repoDir, typ string, body []byte) string {
	t.Helper()
	cmd := exec.Command("git", "hash-object", "-t", typ, "--literally", "-w", "--stdin")
	cmd.Dir = repoDir
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hash-object: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// matDeepTree writes a chain of `levels` trees named "d" ending in a blob,
// hashing in-process and writing all objects with one git call.
func matDeepTree(t testing.TB, repoDir string, levels int, blob string) string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	cur := matRawTree(t, []matTreeEntry{{"100644", "bottom", blob}})
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, cur, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		h := sha1.New()
		fmt.Fprintf(h, "tree %d\x00", len(cur))
		h.Write(cur)
		sha := hex.EncodeToString(h.Sum(nil))
		if i == levels {
			cmd := exec.Command("git", "hash-object", "-t", "tree", "--literally", "-w", "--stdin-paths")
			cmd.Dir = repoDir
			cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("hash-object: %v: %s", err, out)
			}
			return sha
		}
		cur = matRawTree(t, []matTreeEntry{{"40000", "d", sha}})
	}
}

// TestMatRefusesHostileTrees: trees that git's own checks would stop,
// slipped into a mirror whose fsck is off (as after an older git, or an
// admin's override), are refused by the materializer itself: non-zero
// exit, one line naming the path, nothing in DIR or beside it, and a
// canary directory outside untouched.
func TestMatRefusesHostileTrees(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "clean", []gittest.File{{Path: "README", Content: []byte("clean\n")}})
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mirror := filepath.Join(root, "mirrors", "demo.git")
	gittest.Git(t, mirror, "config", "transfer.fsckObjects", "false")
	gittest.Git(t, mirror, "config", "fetch.fsckObjects", "false")

	base := t.TempDir()
	canary := filepath.Join(base, "canary")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	blob := matWriteObject(t, repo.Dir, "blob", []byte("pwned\n"))
	canaryLink := matWriteObject(t, repo.Dir, "blob", []byte(canary))
	upLink := matWriteObject(t, repo.Dir, "blob", []byte("../../.."))
	sub := matWriteObject(t, repo.Dir, "tree", matRawTree(t, []matTreeEntry{{"100644", "pwned", blob}}))
	tree := func(entries ...matTreeEntry) string {
		return matWriteObject(t, repo.Dir, "tree", matRawTree(t, entries))
	}
	cases := []struct {
		name, tree, path string
	}{
		{"dotdot", tree(matTreeEntry{"40000", "..", sub}), ".."},
		{"dotgit", tree(matTreeEntry{"40000", ".git", sub}), ".git"},
		{"dotgit upper", tree(matTreeEntry{"40000", ".GIT", sub}), ".GIT"},
		{"ntfs short name", tree(matTreeEntry{"40000", "git~1", sub}), "git~1"},
		{"slash in name", tree(matTreeEntry{"100644", "a/pwned", blob}), "a/pwned"},
		{"symlink out plus blob under it", tree(
			matTreeEntry{"120000", "a", canaryLink}, matTreeEntry{"100644", "a/pwned", blob}), "a/pwned"},
		{"symlink up plus files under it", tree(
			matTreeEntry{"120000", "a", upLink}, matTreeEntry{"40000", "a", sub}), "a"},
		{"directory then symlink of one name", tree(
			matTreeEntry{"40000", "a", sub}, matTreeEntry{"120000", "a", canaryLink}), "a"},
		{"nested dotgit", tree(matTreeEntry{"40000", "x", tree(matTreeEntry{"40000", ".Git", sub})}), "x/.Git"},
		{"depth 4096", matDeepTree(t, repo.Dir, 4096, blob), strings.Repeat("d/", 1024) + "d"},
	}
	for i, tc := range cases {
		commit := gittest.Git(t, repo.Dir, "commit-tree", tc.tree, "-m", tc.name)
		gittest.Git(t, repo.Dir, "update-ref", fmt.Sprintf("refs/heads/evil%d", i), commit)
	}
	mustGitfs(t, root, "repo", "fetch", "demo")
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(base, "out")
			r := gitfs(t, root, "checkout", "demo", fmt.Sprintf("evil%d", i), out)
			if r.code == 0 {
				t.Fatalf("hostile tree checked out")
			}
			msg := strings.TrimSpace(r.stderr)
			t.Logf("stderr: %.300s", msg)
			if strings.Contains(msg, "\n") {
				t.Errorf("stderr is not one line: %q", msg)
			}
			if !strings.Contains(msg, fmt.Sprintf("%q", tc.path)) {
				t.Errorf("stderr does not name %q: %q", tc.path, msg)
			}
			entries, _ := os.ReadDir(base)
			if len(entries) != 1 || entries[0].Name() != "canary" {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("left beside canary: %v", names)
			}
			if c, _ := os.ReadDir(canary); len(c) != 0 {
				t.Errorf("canary touched: %v", c)
			}
		})
	}
}

// TestMatCheckoutGit: with --git, DIR is a git working tree at the commit:
// `git status --porcelain` prints nothing at once, without git rewriting
// the index, and an edit shows in `git diff`.
func TestMatCheckoutGit(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := append(gittest.Generate(500, 5),
		gittest.File{Path: "run.sh", Content: []byte("#!/bin/sh\n"), Mode: "100755"},
		gittest.File{Path: "link", Content: []byte("run.sh"), Mode: "120000"},
		gittest.File{Path: "empty", Content: nil},
		gittest.File{Path: "ext/module", Content: []byte("1111111111111111111111111111111111111111"), Mode: "160000"},
	)
	commit := repo.Commit(t, "main", "git mode", files)
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	out := filepath.Join(t.TempDir(), "out")
	mustGitfs(t, root, "checkout", "demo", "main", out, "--git")

	before, err := os.Stat(filepath.Join(out, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	if st := gittest.Git(t, out, "status", "--porcelain"); st != "" {
		t.Fatalf("git status not clean:\n%s", st)
	}
	after, err := os.Stat(filepath.Join(out, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Errorf("git status rewrote the index: its stat data was not trusted")
	}
	if head := gittest.Git(t, out, "rev-parse", "HEAD"); head != commit {
		t.Errorf("HEAD = %s, want %s", head, commit)
	}
	if ref, err := gittest.GitErr(out, "symbolic-ref", "-q", "HEAD"); err == nil {
		t.Errorf("HEAD is not detached: %s", ref)
	}
	target := files[0].Path
	if err := os.WriteFile(filepath.Join(out, target), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	diff := gittest.Git(t, out, "diff")
	if !strings.Contains(diff, "+edited") || !strings.Contains(diff, target) {
		t.Errorf("git diff after an edit:\n%.500s", diff)
	}
	if st := gittest.Git(t, out, "status", "--porcelain"); st != "M "+target { // trimmed " M path"
		t.Errorf("git status after an edit: %q", st)
	}
}

// TestMatKill9: a checkout killed at random points leaves DIR absent or
// complete, and the next checkout cleans the stale temp dir and succeeds.
func TestMatKill9(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "kill", gittest.Generate(1500, 9))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	want := gittest.Archive(t, repo.Dir, commit)
	base := t.TempDir()
	// Time a first checkout (building the snapshot and filling the blob
	// store) to spread the kills over, a little past its end so some runs
	// complete. Every other run starts with the store emptied, so kills
	// land in filling as well as in writing.
	start := time.Now()
	mustGitfs(t, root, "checkout", "demo", commit, filepath.Join(base, "warm"))
	span := time.Since(start) * 5 / 4
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	out := filepath.Join(base, "out")
	complete := 0
	for i := 0; i < 20; i++ {
		os.RemoveAll(out)
		if i%2 == 1 {
			emptyBlobStore(t, root)
		}
		delay := time.Duration(rng.Int63n(int64(span)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, gitfsBin, "--root", root, "checkout", "demo", commit, out)
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		cancel()
		if _, err := os.Lstat(out); err == nil {
			got, err := gittest.ReadDirErr(out)
			if err != nil {
				t.Fatalf("run %d (killed after %v): %v", i, delay, err)
			}
			if d := gittest.Diff(want, got, 5); len(d) > 0 {
				t.Fatalf("run %d (killed after %v): DIR exists but is incomplete: %v", i, delay, d)
			}
			complete++
		}
	}
	t.Logf("20 kills over %v: %d left a complete DIR, %d none", span, complete, 20-complete)
	os.RemoveAll(out)
	mustGitfs(t, root, "checkout", "demo", commit, out)
	if d := gittest.Diff(want, gittest.ReadDir(t, out), 5); len(d) > 0 {
		t.Fatalf("checkout after kills: %v", d)
	}
	left, _ := filepath.Glob(out + ".gitfs-tmp-*")
	if len(left) > 0 {
		t.Errorf("stale temp dirs not cleaned: %v", left)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "blobs", "tmp")); len(left) > 0 {
		t.Errorf("temporary blob files of killed checkouts not cleaned: %v", left)
	}
	wantStored := 0
	if checkoutFillsStore(t, root, filepath.Dir(out)) {
		wantStored = distinctBlobs(t, repo.Dir, commit)
	}
	if n := storedBlobs(t, root); n != wantStored {
		t.Errorf("%d blobs stored after a complete checkout, want %d", n, wantStored)
	}
}
