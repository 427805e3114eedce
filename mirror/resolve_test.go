package mirror

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

func TestResolve(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	second := f.repo.Commit(t, "feature", "second", gittest.Generate(3, 2))
	// A tag with the name of a branch: the branch wins.
	gittest.Git(t, f.repo.Dir, "tag", "feature", f.commit)
	gittest.Git(t, f.repo.Dir, "tag", "-a", "-m", "annotated", "v2", second)
	if _, err := f.set.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	m, err := f.set.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rev, want string
		ok        bool
	}{
		{"main", f.commit, true},
		{"HEAD", f.commit, true},
		{"v1", f.commit, true},
		{"v2", second, true}, // annotated tag peels to its commit
		{"feature", second, true},
		{"refs/tags/feature", f.commit, true},
		{f.commit, f.commit, true},
		{f.commit[:10], f.commit, true},
		{"main~0", f.commit, true},
		{"nope", "", false},
		{"", "", false},
		{"--all", "", false},
		{"-h", "", false},
		{"main\nx", "", false},
		{strings.Repeat("1", 40), "", false},
	}
	for _, tc := range tests {
		got, err := m.Resolve(ctx, tc.rev)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q ok=%v", tc.rev, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrUnknownRev) {
			t.Errorf("Resolve(%q): %v is not ErrUnknownRev", tc.rev, err)
		}
	}
}
