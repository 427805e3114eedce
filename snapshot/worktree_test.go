package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// TestRulesAcrossSnapshots: a subtree one snapshot found without
// .gitattributes is not walked again by the next (readRules), and that
// never hides a rule: one added inside it makes it another tree, and one
// above it is read where it is.
func TestRulesAcrossSnapshots(t *testing.T) {
	crlf := []byte("*.txt text eol=crlf\n")
	x := gittest.File{Path: "a/x.txt", Content: []byte("x\ny\n")}
	other := gittest.File{Path: "b/y.txt", Content: []byte("y\n")}
	repo := gittest.NewRepo(t)
	plain := repo.Commit(t, "main", "no rule for a", []gittest.File{x, other, {Path: "b/.gitattributes", Content: crlf}})
	inside := repo.Commit(t, "main", "a rule inside a", []gittest.File{x, other, {Path: "a/.gitattributes", Content: crlf}})
	above := repo.Commit(t, "main", "a rule above a", []gittest.File{x, other, {Path: ".gitattributes", Content: []byte("a/*.txt text eol=crlf\n")}})
	root := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := ms.Add(ctx, "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, commit string
		want         int64
	}{
		{"no rule", plain, 4},
		{"a rule inside", inside, 6},
		{"a rule above", above, 6},
		{"no rule again", plain, 4},
	} {
		snap, release, err := st.Get(ctx, "demo", c.commit)
		if err != nil {
			t.Fatal(err)
		}
		e, err := snap.Lookup(x.Path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := snap.SizeAt(x.Path, e); err != nil || got != c.want {
			t.Errorf("%s: size of %s = %d, %v; want %d", c.name, x.Path, got, err, c.want)
		}
		release()
	}
}

// TestReadFile: ReadFile gives what OpenAt serves, from every source (the
// packs, the blob store, the memory cache, a conversion), into the buffer
// it is given when that is large enough, and refuses content over its
// bound.
func TestReadFile(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: over MemBlobMax, stored by its reader
	files := []gittest.File{
		{Path: ".gitattributes", Content: []byte("*.crlf text eol=crlf\n")},
		{Path: "small.txt", Content: []byte("small\n")},
		{Path: "big.bin", Content: big},
		{Path: "conv.crlf", Content: []byte("a\nb\n")},
		{Path: "empty", Content: nil},
	}
	st, _, _, commit := setup(t, files) // MemBlobMax 1000
	snap := leased(t, st, commit)
	want := func(p string, e snapshot.Entry) []byte {
		b, err := snap.OpenAt(p, e)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		out := make([]byte, b.Size())
		if _, err := b.ReadAt(out, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		return out
	}
	buf := make([]byte, 0, 1<<20)
	for _, stage := range []string{"from the packs", "from memory and the store", "after a fill"} {
		if stage == "after a fill" {
			fill(t, snap)
		}
		for _, f := range files {
			e, err := snap.Lookup(f.Path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := snap.ReadFile(f.Path, e, buf, 1<<20)
			if err != nil {
				t.Fatalf("%s: %s: %v", stage, f.Path, err)
			}
			if w := want(f.Path, e); !bytes.Equal(got, w) {
				t.Errorf("%s: %s: ReadFile %q, OpenAt %q", stage, f.Path, got, w)
			}
			if len(got) > 0 && &got[0] != &buf[:1][0] {
				t.Errorf("%s: %s: not read into the buffer given", stage, f.Path)
			}
		}
	}
	e, _ := snap.Lookup("big.bin")
	if _, err := snap.ReadFile("big.bin", e, nil, int64(len(big))-1); !errors.Is(err, snapshot.ErrTooLarge) {
		t.Errorf("over the bound: %v, want ErrTooLarge", err)
	}
	if got, err := snap.ReadFile("big.bin", e, nil, int64(len(big))); err != nil || !bytes.Equal(got, big) {
		t.Errorf("into no buffer: %d bytes, %v", len(got), err)
	}
}
