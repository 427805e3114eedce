package gitdir

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent", "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func hexID(t *testing.T, s string) [20]byte {
	t.Helper()
	var out [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		t.Fatalf("not an object id: %q", s)
	}
	copy(out[:], b)
	return out
}

// gitsEntries parses `git ls-files -s --debug`: every field git wrote.
func gitsEntries(t *testing.T, dir string) []IndexEntry {
	t.Helper()
	var out []IndexEntry
	num := func(s string) uint32 {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			t.Fatalf("ls-files --debug: %q: %v", s, err)
		}
		return uint32(n)
	}
	stamp := func(s string) time.Time {
		sec, nsec, _ := strings.Cut(s, ":")
		return time.Unix(int64(num(sec)), int64(num(nsec)))
	}
	for _, l := range strings.Split(git(t, dir, "ls-files", "-s", "--debug"), "\n") {
		f := strings.Fields(l)
		switch {
		case !strings.HasPrefix(l, " ") && len(f) == 4:
			mode, _ := strconv.ParseUint(f[0], 8, 32)
			out = append(out, IndexEntry{Mode: uint32(mode), ID: hexID(t, f[1]), Path: f[3]})
		case f[0] == "ctime:":
			out[len(out)-1].Ctime = stamp(f[1])
		case f[0] == "mtime:":
			out[len(out)-1].Mtime = stamp(f[1])
		case f[0] == "dev:":
			out[len(out)-1].Dev, out[len(out)-1].Ino = num(f[1]), num(f[3])
		case f[0] == "uid:":
			out[len(out)-1].UID, out[len(out)-1].GID = num(f[1]), num(f[3])
		case f[0] == "size:":
			out[len(out)-1].Size = num(f[1])
		}
	}
	return out
}

// TestEncodeIndexIsGits: for the entries and cache tree of an index git
// wrote (files, an executable, a symlink, nested directories, names that
// sort differently as paths and as tree entries), given in any order,
// EncodeIndex gives git's file byte for byte.
func TestEncodeIndexIsGits(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for _, f := range []string{"a-b", "a.c", "a/x", "d/b", "d/e/c", "z"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("d/b", filepath.Join(dir, "link"))
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "c") // writes the index with a full TREE
	own, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(rev string) [20]byte { return hexID(t, git(t, dir, "rev-parse", rev)) }
	root := &CacheTree{Entries: 8, ID: id("HEAD^{tree}"), Subtrees: []*CacheTree{
		{Name: "a", Entries: 1, ID: id("HEAD:a")},
		{Name: "d", Entries: 2, ID: id("HEAD:d"), Subtrees: []*CacheTree{{Name: "e", Entries: 1, ID: id("HEAD:d/e")}}},
	}}
	entries := gitsEntries(t, dir)
	if len(entries) != 8 {
		t.Fatalf("git lists %d entries, want 8", len(entries))
	}
	reversed := make([]IndexEntry, len(entries))
	for i, e := range entries {
		reversed[len(entries)-1-i] = e
	}
	for _, in := range [][]IndexEntry{entries, reversed} {
		ours, err := EncodeIndex(in, root)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, own) {
			t.Fatalf("our index differs from git's (%d vs %d bytes)", len(ours), len(own))
		}
	}
	if got := git(t, dir, "status", "--porcelain"); got != "" {
		t.Errorf("git status after: %q", got)
	}
	if read, err := ReadIndex(own); err != nil || !slices.EqualFunc(read, entries, sameEntry) {
		t.Errorf("ReadIndex of git's index: %v: %d entries unlike git's %d", err, len(read), len(entries))
	}
	// Version 4 (prefix-compressed paths) is refused, not misread.
	git(t, dir, "update-index", "--index-version", "4")
	v4, _ := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if _, err := ReadIndex(v4); err == nil {
		t.Error("ReadIndex accepted a version 4 index")
	}
	for n := 0; n < len(own)-20; n += 7 {
		if _, err := ReadIndex(own[:n]); err == nil && n < 12+64 {
			t.Errorf("ReadIndex of %d bytes accepted", n)
		}
	}

	// git trusts the extension: a wrong root id (of an object that exists:
	// git checks that much) shows through git write-tree.
	wrong := *root
	wrong.ID = id("HEAD:d")
	forged, err := EncodeIndex(entries, &wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "index"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := git(t, dir, "write-tree"); got != hex.EncodeToString(wrong.ID[:]) {
		t.Errorf("git write-tree = %s: git did not use the extension", got)
	}
}

// TestEncodeIndexIsGoGits: what go-git's encoder writes for the same
// entries, at the edges of the format: a path of 0xfff bytes and longer
// (the flags' length saturates), zero and pre-1970 times, large numbers.
func TestEncodeIndexIsGoGits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("p/", n/2)[:n-1] + "x" }
	when := time.Unix(1796137686, 185592662)
	entries := []IndexEntry{
		{Path: "a", Mode: ModeRegular, Ctime: when, Mtime: when.Add(time.Second), Dev: 65024, Ino: 1<<32 - 1, UID: 1000, GID: 1000, Size: 12},
		{Path: "b", Mode: ModeExecutable, Size: 1<<32 - 1},
		{Path: "c", Mode: ModeSymlink, Ctime: time.Unix(-5, 0), Mtime: time.Unix(-5, 0)},
		{Path: "g", Mode: ModeGitlink},
		{Path: long(0xffe), Mode: ModeRegular},
		{Path: long(0xfff), Mode: ModeRegular},
		{Path: long(0x1234), Mode: ModeRegular},
	}
	for i := range entries {
		entries[i].ID[0], entries[i].ID[19] = byte(i+1), 0xee
	}
	idx := &index.Index{Version: 2}
	for _, e := range entries {
		ge := &index.Entry{Name: e.Path, Hash: plumbing.Hash(e.ID), Mode: filemode.FileMode(e.Mode),
			Dev: e.Dev, Inode: e.Ino, UID: e.UID, GID: e.GID, Size: e.Size}
		if e.Ctime.Unix() >= 0 {
			ge.CreatedAt, ge.ModifiedAt = e.Ctime, e.Mtime
		}
		idx.Entries = append(idx.Entries, ge)
	}
	var want bytes.Buffer
	if err := index.NewEncoder(&want).Encode(idx); err != nil {
		t.Fatal(err)
	}
	got, err := EncodeIndex(entries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("ours differs from go-git's (%d vs %d bytes)", len(got), want.Len())
	}
	read, err := ReadIndex(got)
	if err != nil {
		t.Fatal(err)
	}
	entries[2].Ctime, entries[2].Mtime = time.Time{}, time.Time{} // recorded as unknown
	slices.SortFunc(entries, func(a, b IndexEntry) int { return strings.Compare(a.Path, b.Path) })
	if !slices.EqualFunc(read, entries, sameEntry) {
		t.Errorf("ReadIndex(EncodeIndex(entries)) gives other entries (%d, want %d)", len(read), len(entries))
	}
}

func sameEntry(a, b IndexEntry) bool {
	at, bt := a, b
	at.Ctime, at.Mtime, bt.Ctime, bt.Mtime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return at == bt && a.Ctime.Equal(b.Ctime) && a.Mtime.Equal(b.Mtime)
}

func TestEncodeIndexRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []IndexEntry
	}{
		{"empty path", []IndexEntry{{Path: ""}}},
		{"NUL in a path", []IndexEntry{{Path: "a\x00b"}}},
		{"a path twice", []IndexEntry{{Path: "a"}, {Path: "b"}, {Path: "a"}}},
	} {
		if _, err := EncodeIndex(tc.entries, nil); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
