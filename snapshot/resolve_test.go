package snapshot_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// TestResolve: revs resolve through the mirror; a full commit id the
// mirror does not know resolves to itself only while a snapshot of it is
// published from the mirror's own repository; anything else unknown is
// mirror.ErrUnknownRev. The package function and the Store method are the
// same rule.
func TestResolve(t *testing.T) {
	st, ms, root, commit := setup(t, []gittest.File{{Path: "a", Content: []byte("a")}})
	m, err := ms.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	lost := strings.Repeat("ab", 20) // a commit the mirror lost
	unknown := strings.Repeat("cd", 20)
	dir := filepath.Join(root, "snapshots", lost)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(`{"commit":"`+lost+`","repo":"demo"}`), 0o444); err != nil {
		t.Fatal(err)
	}
	// A snapshot another repository published: no evidence that demo has
	// the commit (snapshots are kept by commit alone).
	other := strings.Repeat("ef", 20)
	odir := filepath.Join(root, "snapshots", other)
	if err := os.MkdirAll(odir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(odir, "meta.json"), []byte(`{"commit":"`+other+`","repo":"private"}`), 0o444); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rev, want string
		unknown   bool
	}{
		{"main", commit, false},
		{commit, commit, false},
		{commit[:10], commit, false},
		{lost, lost, false},
		{unknown, "", true},
		{other, "", true},     // another repository's snapshot
		{lost[:10], "", true}, // only a full id falls back
		{"nope", "", true},
	}
	resolvers := map[string]func(rev string) (string, error){
		"Resolve": func(rev string) (string, error) { return snapshot.Resolve(context.Background(), root, m, rev) },
		"Store.Resolve": func(rev string) (string, error) {
			return st.Resolve(context.Background(), m, rev)
		},
	}
	for name, resolve := range resolvers {
		for _, tc := range tests {
			got, err := resolve(tc.rev)
			if tc.unknown {
				if !errors.Is(err, mirror.ErrUnknownRev) {
					t.Errorf("%s(%q) = %q, %v; want mirror.ErrUnknownRev", name, tc.rev, got, err)
				}
				continue
			}
			if err != nil || got != tc.want {
				t.Errorf("%s(%q) = %q, %v; want %s", name, tc.rev, got, err, tc.want)
			}
		}
	}
}
