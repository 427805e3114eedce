package mirror

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/locks"
)

// TestBrokenMirrorRecloned: each kind of damage is detected when the mirror
// is opened, the mirror is moved aside and cloned again, and the log says so.
func TestBrokenMirrorRecloned(t *testing.T) {
	largestPack := func(t *testing.T, dir string) string {
		packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
		sort.Slice(packs, func(i, j int) bool { return fileSize(packs[i]) > fileSize(packs[j]) })
		if len(packs) == 0 {
			t.Fatal("mirror has no pack")
		}
		return packs[0]
	}
	tests := []struct {
		name          string
		enclosingRepo bool // the root lies inside another git work tree
		poison        func(t *testing.T, dir string)
		wantBroken    bool
	}{
		{"healthy", false, func(*testing.T, string) {}, false},
		{"truncated pack", false, func(t *testing.T, dir string) {
			p := largestPack(t, dir)
			must(t, os.Truncate(p, fileSize(p)/2))
		}, true},
		{"pack missing, index present", false, func(t *testing.T, dir string) {
			must(t, os.Remove(largestPack(t, dir)))
		}, true},
		{"refs emptied", false, func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "packed-refs")))
			must(t, os.RemoveAll(filepath.Join(dir, "refs")))
			must(t, os.MkdirAll(filepath.Join(dir, "refs", "heads"), 0o755))
			must(t, os.MkdirAll(filepath.Join(dir, "refs", "tags"), 0o755))
		}, true},
		{"refs dir gone, root inside another repository", true, func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "packed-refs")))
			must(t, os.RemoveAll(filepath.Join(dir, "refs")))
		}, true},
		{"garbage line in packed-refs", false, func(t *testing.T, dir string) {
			appendFile(t, filepath.Join(dir, "packed-refs"), "this is not a ref\n")
		}, true},
		{"packed-refs cut mid-line", false, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "packed-refs")
			must(t, os.Truncate(p, fileSize(p)-7))
		}, true},
		{"packed-refs names a missing object", false, func(t *testing.T, dir string) {
			p := filepath.Join(dir, "packed-refs")
			b, err := os.ReadFile(p)
			must(t, err)
			lines := strings.Split(string(b), "\n")
			for i, l := range lines {
				if len(l) > 41 && l[40] == ' ' {
					lines[i] = strings.Repeat("1", 40) + l[40:]
				}
			}
			must(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{repo: gittest.NewRepo(t), root: t.TempDir(), log: &syncBuffer{}}
			f.commit = f.repo.Commit(t, "main", "first", gittest.Generate(40, 4))
			if tc.enclosingRepo {
				outer := t.TempDir()
				other := &gittest.Repo{Dir: outer}
				gittest.Git(t, "", "init", "-q", "-b", "main", outer)
				other.Commit(t, "main", "outer", gittest.Generate(2, 5))
				f.root = filepath.Join(outer, "cache", "gitfs")
			}
			f.set = f.newSet(t)
			ctx := context.Background()
			if _, err := f.set.Add(ctx, "demo", f.repo.Dir); err != nil {
				t.Fatal(err)
			}
			tc.poison(t, f.dir())
			m := &Mirror{Name: "demo", Dir: f.dir(), set: f.set}
			herr := m.checkHealth(ctx)
			if (herr != nil) != tc.wantBroken {
				t.Fatalf("checkHealth = %v, want broken=%v", herr, tc.wantBroken)
			}
			m, err := f.set.Get(ctx, "demo")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if err := m.checkHealth(ctx); err != nil {
				t.Fatalf("after Get: %v", err)
			}
			if got, err := m.Resolve(ctx, "main"); err != nil || got != f.commit {
				t.Fatalf("Resolve(main) = %s, %v; want %s", got, err, f.commit)
			}
			aside, _ := filepath.Glob(filepath.Join(f.root, "mirrors", "demo.broken-*"))
			logged := strings.Contains(f.log.String(), "mirror is broken")
			if tc.wantBroken != (len(aside) == 1) || tc.wantBroken != logged {
				t.Fatalf("moved aside: %v, logged: %v; want %v\nlog: %s", aside, logged, tc.wantBroken, f.log)
			}
			if tmps, _ := filepath.Glob(filepath.Join(f.root, "mirrors", "*"+locks.TempMarker+"*")); len(tmps) > 0 {
				t.Fatalf("temp dirs left: %v", tmps)
			}
		})
	}
}

// TestRepairFailureKeepsBrokenMirror: when the remote is gone, a
// broken mirror is neither served nor lost: Get fails and says why, and the
// mirror (with its URL) stays for the next attempt.
func TestRepairFailureKeepsBrokenMirror(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must(t, os.Remove(filepath.Join(f.dir(), "packed-refs")))
	moved := f.repo.Dir + ".moved"
	must(t, os.Rename(f.repo.Dir, moved))
	if _, err := f.set.Get(ctx, "demo"); err == nil || !strings.Contains(err.Error(), "re-clone") {
		t.Fatalf("Get of a broken mirror with its remote gone: %v", err)
	}
	if _, err := os.Stat(f.dir()); err != nil {
		t.Fatalf("broken mirror lost: %v", err)
	}
	must(t, os.Rename(moved, f.repo.Dir))
	if _, err := f.set.Get(ctx, "demo"); err != nil {
		t.Fatalf("Get once the remote is back: %v", err)
	}
}
