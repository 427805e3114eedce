package mirror

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestRefListKept: RefList answers again without asking git while the
// mirror's ref files are unchanged, and sees every way refs change: a
// fetch, refs written by git in the mirror (loose, moved, deleted,
// packed), HEAD pointed elsewhere.
func TestRefListKept(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := f.set.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	names := func() ([]string, string) {
		t.Helper()
		refs, head, err := m.RefList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range refs {
			out = append(out, r.Name+"="+r.ID[:7])
		}
		return out, head
	}
	first, head := names()
	asked := f.set.refListings.Load()
	if again, _ := names(); !slices.Equal(again, first) || f.set.refListings.Load() != asked {
		t.Fatalf("second RefList: %v (git asked %d times more), want %v from the first", again, f.set.refListings.Load()-asked, first)
	}
	if head != "refs/heads/main" {
		t.Errorf("head %q", head)
	}
	short := func(rev string) string { return gittest.Git(t, m.Dir, "rev-parse", rev)[:7] }
	other := f.repo.Commit(t, "topic", "other", gittest.Generate(3, 2))
	for _, step := range []struct {
		name   string
		change func()
		want   string // a ref=id the list must then hold
		gone   string // one it must not
	}{
		{"a fetch", func() {
			if _, err := f.set.Fetch(ctx, "demo"); err != nil {
				t.Fatal(err)
			}
		}, "refs/heads/topic=" + other[:7], ""},
		{"a loose tag", func() { gittest.Git(t, m.Dir, "tag", "v2", "main") }, "refs/tags/v2=" + f.commit[:7], ""},
		{"a branch moved", func() { gittest.Git(t, m.Dir, "update-ref", "refs/heads/main", other) }, "refs/heads/main=" + other[:7], "refs/heads/main=" + f.commit[:7]},
		{"refs packed", func() { gittest.Git(t, m.Dir, "pack-refs", "--all") }, "refs/tags/v2=" + f.commit[:7], ""},
		{"a packed ref moved", func() { gittest.Git(t, m.Dir, "update-ref", "refs/tags/v2", other) }, "refs/tags/v2=" + short(other), "refs/tags/v2=" + f.commit[:7]},
		{"a ref deleted", func() { gittest.Git(t, m.Dir, "update-ref", "-d", "refs/heads/topic") }, "", "refs/heads/topic=" + other[:7]},
	} {
		step.change()
		got, _ := names()
		if step.want != "" && !slices.Contains(got, step.want) {
			t.Errorf("after %s: %v lacks %s", step.name, got, step.want)
		}
		if step.gone != "" && slices.Contains(got, step.gone) {
			t.Errorf("after %s: %v still holds %s", step.name, got, step.gone)
		}
	}
	gittest.Git(t, m.Dir, "symbolic-ref", "HEAD", "refs/heads/other")
	if _, head := names(); head != "refs/heads/other" {
		t.Errorf("after HEAD moved: head %q", head)
	}
}

// TestResolveByNameWithoutGit: once the ref list is kept, opening the
// mirror and resolving a branch or a tag (lightweight or annotated) runs
// no git at all (here, no git can run); a tag of a tag, a moved ref and
// an unknown name still get git's answer.
func TestResolveByNameWithoutGit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := f.set.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, m.Dir, "tag", "-a", "-m", "annotated", "v2", "main")
	gittest.Git(t, m.Dir, "tag", "-a", "-m", "tag of a tag", "v3", "v2")
	if _, _, err := m.RefList(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.set.Get(ctx, "demo"); err != nil { // the health check passes once with git
		t.Fatal(err)
	}
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir()) // no git from here
	if _, err := f.set.Get(ctx, "demo"); err != nil {
		t.Fatalf("Get with nothing changed ran git: %v", err)
	}
	for _, rev := range []string{"main", "v1", "v2", "refs/heads/main", "refs/tags/v2"} {
		got, err := m.Resolve(ctx, rev)
		if err != nil || got != f.commit {
			t.Errorf("Resolve(%q) without git = %q, %v; want %s", rev, got, err, f.commit)
		}
	}
	if _, err := m.Resolve(ctx, "v3"); err == nil {
		t.Error("a tag of a tag resolved without git: the list cannot know where it ends")
	}
	t.Setenv("PATH", path)
	if got, err := m.Resolve(ctx, "v3"); err != nil || got != f.commit {
		t.Errorf("Resolve(v3) = %q, %v; want %s", got, err, f.commit)
	}
	other := f.repo.Commit(t, "topic", "other", gittest.Generate(3, 2))
	if _, err := f.set.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, m.Dir, "update-ref", "refs/heads/main", other)
	if got, err := m.Resolve(ctx, "main"); err != nil || got != other {
		t.Errorf("Resolve(main) after it moved = %q, %v; want %s", got, err, other)
	}
	if _, err := m.Resolve(ctx, "nosuch"); !errors.Is(err, ErrUnknownRev) {
		t.Errorf("Resolve(nosuch) = %v, want ErrUnknownRev", err)
	}
}
