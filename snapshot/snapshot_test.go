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
	var trees [][]snapshot.Entry
	trees = append(trees, nil, []snapshot.Entry{{Name: "a", Kind: snapshot.Dir}})
	for n := 0; n < 300; n++ {
		trees = append(trees, randomTree(rng))
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

// randomTree is a tree in git order of up to 40 short names whose bytes
// sort below and above the "/" a directory sorts with, of every kind, with
// ids from a small set (so that two trees often share entries).
func randomTree(rng *rand.Rand) []snapshot.Entry {
	alphabet := []byte("-.0ab")
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
		entries = append(entries, snapshot.Entry{Name: string(b), Kind: kind, ID: snapshot.ID{byte(rng.Intn(3))}})
	}
	sortGit(entries)
	return entries
}

func sortGit(entries []snapshot.Entry) {
	key := func(e snapshot.Entry) string {
		if e.Kind == snapshot.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
}

// TestDiff: Diff's merge of two trees in git order reports each name whose
// entry differs once, with the entries a map of each side finds, in git
// order of the first side's (or only) entry; a name that is a file on one
// side and a directory on the other (they sort apart) is one change.
func TestDiff(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	type pair struct{ a, b []snapshot.Entry }
	pairs := []pair{
		{nil, nil},
		{[]snapshot.Entry{{Name: "a", Kind: snapshot.File}}, []snapshot.Entry{{Name: "a", Kind: snapshot.Dir}}},
		{[]snapshot.Entry{{Name: "a", Kind: snapshot.Dir}, {Name: "a0", Kind: snapshot.File}},
			[]snapshot.Entry{{Name: "a", Kind: snapshot.File}, {Name: "a-b", Kind: snapshot.File}}},
	}
	for n := 0; n < 500; n++ {
		a := randomTree(rng)
		// b: a with some entries dropped, changed, turned into another
		// kind, and new ones, so that most names match.
		var b []snapshot.Entry
		for _, e := range a {
			switch rng.Intn(8) {
			case 0:
				continue
			case 1:
				e.ID[1]++
			case 2:
				e.Kind = []snapshot.Kind{snapshot.File, snapshot.Dir, snapshot.Executable, snapshot.Symlink}[rng.Intn(4)]
			}
			b = append(b, e)
		}
		inB := map[string]bool{}
		for _, e := range b {
			inB[e.Name] = true
		}
		extra := randomTree(rng)
		for _, e := range extra[:min(len(extra), rng.Intn(3))] {
			if !inB[e.Name] {
				b = append(b, e)
			}
		}
		sortGit(b)
		pairs = append(pairs, pair{a, b}, pair{b, a})
	}
	for _, p := range pairs {
		byName := func(es []snapshot.Entry) map[string]snapshot.Entry {
			m := map[string]snapshot.Entry{}
			for _, e := range es {
				m[e.Name] = e
			}
			return m
		}
		ma, mb := byName(p.a), byName(p.b)
		want := map[string]bool{}
		for name, x := range ma {
			if y, ok := mb[name]; !ok || x != y {
				want[name] = true
			}
		}
		for name := range mb {
			if _, ok := ma[name]; !ok {
				want[name] = true
			}
		}
		got := map[string]bool{}
		var order []snapshot.Entry
		err := snapshot.Diff(p.a, p.b, func(x, y *snapshot.Entry) error {
			name := ""
			switch {
			case x != nil && y != nil:
				if x.Name != y.Name || *x != ma[x.Name] || *y != mb[y.Name] {
					t.Fatalf("pair %+v, %+v: not the entries of one name on each side (a %+v, b %+v)", *x, *y, p.a, p.b)
				}
				name = x.Name
				order = append(order, *x)
			case x != nil:
				if _, ok := mb[x.Name]; ok || *x != ma[x.Name] {
					t.Fatalf("%+v reported removed; b has %+v", *x, mb[x.Name])
				}
				name = x.Name
				order = append(order, *x)
			default:
				if _, ok := ma[y.Name]; ok || *y != mb[y.Name] {
					t.Fatalf("%+v reported added; a has %+v", *y, ma[y.Name])
				}
				name = y.Name
			}
			if got[name] {
				t.Fatalf("%q reported twice (a %+v, b %+v)", name, p.a, p.b)
			}
			got[name] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Diff(%+v, %+v) reports %v, want %v", p.a, p.b, got, want)
		}
		if !sort.SliceIsSorted(order, func(i, j int) bool { return slicesIndex(p.a, order[i]) < slicesIndex(p.a, order[j]) }) {
			t.Fatalf("entries of a reported out of order: %+v", order)
		}
	}
	stop := errors.New("stop")
	calls := 0
	a := []snapshot.Entry{{Name: "a", Kind: snapshot.File}, {Name: "b", Kind: snapshot.File}}
	if err := snapshot.Diff(a, nil, func(x, y *snapshot.Entry) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("Diff after fn's error: %v, %d calls; want stop, 1", err, calls)
	}
}

func slicesIndex(es []snapshot.Entry, e snapshot.Entry) int {
	for i, x := range es {
		if x == e {
			return i
		}
	}
	return -1
}
