package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/snapshot"
)

// TestTreeRefusesHostileTreeOfPublishedSnapshot: a snapshot published before
// its trees were checked (here: a valid snapshot whose packs also hold bad
// trees no build walk reached) refuses each bad tree when it is read, every
// time (a refusal is not cached), naming the tree and the entry, and keeps
// serving its good trees.
func TestTreeRefusesHostileTreeOfPublishedSnapshot(t *testing.T) {
	root, commit, _ := setupMirror(t)
	h := newHostileObjects(t, filepath.Join(root, "mirrors", "demo.git"))
	blob := h.blob("x")
	bad := []struct {
		tree     string
		wantName string
		wantRule string
	}{
		{h.tree(hEntry{"40000", ".git", h.tree(hEntry{"100644", "config", blob})}), ".git", snapshot.RuleDotGit},
		{h.tree(hEntry{"100644", "..", blob}), "..", snapshot.RuleDot},
		{h.tree(hEntry{"100644", "b", blob}, hEntry{"100644", "a", blob}), "a", snapshot.RuleOrder},
		{h.tree(hEntry{"100644", "x", blob}, hEntry{"100644", "x", blob}), "x", snapshot.RuleDuplicate},
	}
	h.flush() // loose in the mirror: the build packs them into the snapshot
	snap, release, err := hostileStore(t, root, snapshot.Options{}).Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, b := range bad {
		id := snapshot.ID(mustHash(t, b.tree))
		for i := 0; i < 2; i++ {
			_, err := snap.Tree(id)
			var re *snapshot.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("tree with %q served: err = %v", b.wantName, err)
			}
			if re.Path != b.wantName || re.Rule != b.wantRule || re.Tree != id {
				t.Errorf("refused %q in %s for %q, want %q in %s for %q", re.Path, re.Tree, re.Rule, b.wantName, id, b.wantRule)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%q", b.wantName)) || !strings.Contains(msg, id.String()) {
				t.Errorf("error does not name the entry and tree: %s", msg)
			}
		}
	}
	if _, err := snap.Lookup("d01"); err != nil {
		t.Errorf("good tree after refusals: %v", err)
	}
}

// TestFind: Find's binary search finds every entry of trees in git order
// (a directory sorts as if its name ended in "/", so names with bytes
// below '/' sit between a file "a" and a directory "a"), and nothing else,
// as a linear scan would.
func TestFind(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	alphabet := []byte("-.0ab") // bytes below and above the "/" a directory sorts with
	var trees [][]snapshot.Entry
	trees = append(trees, nil, []snapshot.Entry{{Name: "a", Kind: snapshot.Dir}})
	for n := 0; n < 300; n++ {
		names := map[string]bool{}
		var entries []snapshot.Entry
		for i := rng.Intn(40); i > 0; i-- {
			var b []byte
			for j := 1 + rng.Intn(4); j > 0; j-- {
				b = append(b, alphabet[rng.Intn(len(alphabet))])
			}
			if names[string(b)] {
				continue
			}
			names[string(b)] = true
			kind := []snapshot.Kind{snapshot.File, snapshot.Dir, snapshot.Gitlink, snapshot.Symlink}[rng.Intn(4)]
			entries = append(entries, snapshot.Entry{Name: string(b), Kind: kind})
		}
		key := func(e snapshot.Entry) string {
			if e.Kind == snapshot.Dir {
				return e.Name + "/"
			}
			return e.Name
		}
		sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
		trees = append(trees, entries)
	}
	for _, entries := range trees {
		linear := func(name string) (snapshot.Entry, bool) {
			for _, e := range entries {
				if e.Name == name {
					return e, true
				}
			}
			return snapshot.Entry{}, false
		}
		probes := []string{"", "a", "a-", "a.", "a0", "b", "zz"}
		for _, e := range entries {
			probes = append(probes, e.Name, e.Name+"-", e.Name+"0")
		}
		for _, name := range probes {
			got, ok := snapshot.Find(entries, name)
			want, wantOK := linear(name)
			if ok != wantOK || got != want {
				t.Fatalf("Find(%q) = %+v, %v; a linear scan finds %+v, %v in %+v", name, got, ok, want, wantOK, entries)
			}
		}
	}
}
