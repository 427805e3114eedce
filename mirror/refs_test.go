package mirror

import (
	"context"
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
