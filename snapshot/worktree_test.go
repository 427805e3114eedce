package snapshot_test

import (
	"context"
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
