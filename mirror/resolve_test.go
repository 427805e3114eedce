package mirror

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
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

// TestResolveAmbiguous: an abbreviated sha two commits start with is
// refused as ambiguous, naming them, not as unknown.
func TestResolveAmbiguous(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Find two commits whose ids share 4 hex digits by hashing commit
	// objects here (a few hundred tries), then write just those two.
	const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	gittest.Git(t, f.repo.Dir, "mktree") // writes the empty tree
	body := func(i int) string {
		return fmt.Sprintf("tree %s\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nc%d\n", emptyTree, i)
	}
	byPrefix := map[string]int{}
	var a, b int
	for i := 0; ; i++ {
		sum := sha1.Sum([]byte(fmt.Sprintf("commit %d\x00%s", len(body(i)), body(i))))
		p := hex.EncodeToString(sum[:])[:4]
		if j, ok := byPrefix[p]; ok {
			a, b = j, i
			break
		}
		byPrefix[p] = i
	}
	var ids []string
	for n, i := range []int{a, b} {
		cmd := exec.Command("git", "-C", f.repo.Dir, "hash-object", "-t", "commit", "-w", "--stdin")
		cmd.Stdin = strings.NewReader(body(i))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		id := strings.TrimSpace(string(out))
		ids = append(ids, id)
		gittest.Git(t, f.repo.Dir, "update-ref", fmt.Sprintf("refs/heads/twin%d", n), id)
	}
	if _, err := f.set.Fetch(ctx, "demo"); err != nil {
		t.Fatal(err)
	}
	m, err := f.set.Get(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Resolve(ctx, ids[0][:4])
	if !errors.Is(err, ErrAmbiguousRev) || !strings.Contains(err.Error(), "2 commits start with it") ||
		!strings.Contains(err.Error(), ids[0][:12]) || !strings.Contains(err.Error(), ids[1][:12]) {
		t.Fatalf("Resolve(%q) with two such commits: %v", ids[0][:4], err)
	}
	for _, id := range ids {
		if got, err := m.Resolve(ctx, id[:12]); err != nil || got != id {
			t.Errorf("Resolve(%q) = %q, %v; want %s", id[:12], got, err, id)
		}
	}
}
