package mirror

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/locks"
)

func TestRemove(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, f.set.SetAccess("demo", Access{Owner: 1000, Public: true}))
	broken := filepath.Join(f.root, "mirrors", "demo.broken-20200101T000000.000000000")
	must(t, os.Mkdir(broken, 0o700))
	must(t, f.set.Remove(ctx, "demo"))
	for _, p := range []string{filepath.Join(f.root, "mirrors", "demo.git"), filepath.Join(f.root, "mirrors", "demo.access.json"), broken} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Remove: %v", p, err)
		}
	}
	if _, err := f.set.Get(ctx, "demo"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v", err)
	}
	if err := f.set.Remove(ctx, "demo"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(f.root, "mirrors")); len(entries) != 0 {
		t.Errorf("mirrors/ not empty after Remove: %v", entries)
	}
	// The name can be added again.
	if _, err := f.set.Add(ctx, "demo", f.repo.Dir); err != nil {
		t.Fatal(err)
	}
}

func TestPruneBroken(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Join(f.root, "mirrors")
	old := filepath.Join(dir, "demo.broken-"+time.Now().Add(-10*24*time.Hour).UTC().Format(brokenTimeLayout))
	recent := filepath.Join(dir, "demo.broken-"+time.Now().Add(-time.Hour).UTC().Format(brokenTimeLayout))
	leftover := filepath.Join(dir, ".gone"+removingMarker+"123")
	for _, p := range []string{old, recent, leftover} {
		must(t, os.Mkdir(p, 0o700))
	}
	removed, err := f.set.PruneBroken(7 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{leftover, old}; !reflect.DeepEqual(removed, want) {
		t.Errorf("PruneBroken removed %v, want %v", removed, want)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent broken copy was removed: %v", err)
	}
	if _, err := f.set.Get(context.Background(), "demo"); err != nil {
		t.Errorf("the mirror itself: %v", err)
	}
}

func TestPruneLocks(t *testing.T) {
	f := newFixture(t)
	lockDir := filepath.Join(f.root, "locks")
	gone := filepath.Join(lockDir, "mirror-gone.lock")
	goneObjects := filepath.Join(lockDir, "mirror-gone.objects.lock")
	heldGone := filepath.Join(lockDir, "mirror-held.lock")
	fresh := filepath.Join(lockDir, "mirror-fresh.lock")
	for _, p := range []string{gone, goneObjects, heldGone, fresh} {
		must(t, os.WriteFile(p, nil, 0o644))
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{gone, goneObjects, heldGone} {
		must(t, os.Chtimes(p, past, past))
	}
	h, err := locks.Shared(context.Background(), heldGone)
	must(t, err)
	defer h.Unlock()
	if _, err := f.set.Fetch(context.Background(), "demo"); err != nil { // demo's own lock exists, in use
		t.Fatal(err)
	}
	n, err := f.set.PruneLocks(time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("PruneLocks = %d, %v; want 2", n, err)
	}
	for p, want := range map[string]bool{gone: false, goneObjects: false, heldGone: true, fresh: true, f.set.lockPath("demo"): true} {
		_, err := os.Stat(p)
		if (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestParseRefs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"all", nil, false},
		{"heads,tags", []string{"heads", "tags"}, false},
		{"refs/heads/, tags, heads", []string{"heads", "tags"}, false},
		{"notes", []string{"notes"}, false},
		{"heads,../x", nil, true},
		{"heads,", nil, true},
		{"Heads", nil, true},
		{"pull/*", nil, true},
	} {
		got, err := ParseRefs(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRefs(%q) = %v, %v; want %v, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestAddRefs: a mirror of heads and tags has no refs/pull/*, keeps to its
// refs on fetch and on a repair's re-clone, and its HEAD follows the
// remote's.
func TestAddRefs(t *testing.T) {
	ctx := context.Background()
	repo := gittest.NewRepo(t)
	main := repo.Commit(t, "main", "first", gittest.Generate(5, 1))
	gittest.Git(t, repo.Dir, "tag", "v1")
	gittest.Git(t, repo.Dir, "update-ref", "refs/pull/1/head", main)
	root := t.TempDir()
	set, err := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(t, err)
	if _, err := set.AddRefs(ctx, "demo", repo.Dir, []string{"heads", "tags"}); err != nil {
		t.Fatal(err)
	}
	m, err := set.Get(ctx, "demo")
	must(t, err)
	refs := func() string {
		return gittest.Git(t, m.Dir, "for-each-ref", "--format=%(refname)")
	}
	if got := refs(); strings.Contains(got, "refs/pull") || !strings.Contains(got, "refs/heads/main") || !strings.Contains(got, "refs/tags/v1") {
		t.Fatalf("refs after add: %s", got)
	}
	if head, err := m.Resolve(ctx, "HEAD"); err != nil || head != main {
		t.Errorf("HEAD = %s, %v; want %s", head, err, main)
	}
	if kinds, err := m.RefKinds(ctx); err != nil || !reflect.DeepEqual(kinds, []string{"heads", "tags"}) {
		t.Errorf("RefKinds = %v, %v", kinds, err)
	}
	gittest.Git(t, repo.Dir, "update-ref", "refs/pull/2/head", main)
	repo.Commit(t, "feature", "second", gittest.Generate(6, 2))
	if _, err := set.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := refs(); strings.Contains(got, "refs/pull") || !strings.Contains(got, "refs/heads/feature") {
		t.Fatalf("refs after fetch: %s", got)
	}
	// Break it: the re-clone keeps the same refs.
	must(t, os.WriteFile(filepath.Join(m.Dir, "packed-refs"), []byte("garbage\n"), 0o644))
	for _, r := range []string{"heads/main", "heads/feature", "tags/v1"} {
		os.Remove(filepath.Join(m.Dir, "refs", r))
	}
	if _, err := set.Get(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	if got := refs(); strings.Contains(got, "refs/pull") || !strings.Contains(got, "refs/heads/feature") {
		t.Fatalf("refs after the repair's re-clone: %s", got)
	}
	// Asking again for other refs is refused; the same refs, or none, succeed.
	if _, err := set.AddRefs(ctx, "demo", repo.Dir, []string{"heads"}); err == nil || !strings.Contains(err.Error(), "refs heads,tags") {
		t.Errorf("add again with other refs: %v", err)
	}
	if _, err := set.AddRefs(ctx, "demo", repo.Dir, []string{"heads", "tags"}); err != nil {
		t.Errorf("add again with the same refs: %v", err)
	}
	if _, err := set.Add(ctx, "demo", repo.Dir); err != nil {
		t.Errorf("add again without --refs: %v", err)
	}
	// A plain mirror has every ref.
	if _, err := set.Add(ctx, "all", repo.Dir); err != nil {
		t.Fatal(err)
	}
	all, err := set.Get(ctx, "all")
	must(t, err)
	if got := gittest.Git(t, all.Dir, "for-each-ref", "--format=%(refname)"); !strings.Contains(got, "refs/pull/1/head") {
		t.Errorf("a plain mirror lacks refs/pull: %s", got)
	}
	if kinds, _ := all.RefKinds(ctx); kinds != nil {
		t.Errorf("RefKinds of a plain mirror = %v", kinds)
	}
}
