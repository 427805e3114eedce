package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCorruptMirrorRecloned: a damaged mirror is detected by the next `repo
// fetch` or `checkout`, moved aside to mirrors/demo.broken-<time>, cloned
// again, and the command succeeds and says so; no snapshot is made from the
// broken mirror. A pack truncated through the hard link a snapshot shares
// with the mirror makes that snapshot refused and rebuilt, never served.
func TestCorruptMirrorRecloned(t *testing.T) {
	truncatePack := func(t *testing.T, dir string) {
		packs, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.pack"))
		if len(packs) == 0 {
			t.Fatal("no pack")
		}
		for _, p := range packs {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}
	}
	emptyRefs := func(t *testing.T, dir string) {
		os.Remove(filepath.Join(dir, "packed-refs"))
		entries, _ := os.ReadDir(filepath.Join(dir, "refs"))
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, "refs", e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	corruptPackedRefs := func(t *testing.T, dir string) {
		p := filepath.Join(dir, "packed-refs")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(b[:len(b)/2], "\x00garbage\n"...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name          string
		poison        func(t *testing.T, dir string)
		trigger       string // "fetch" or "checkout"
		snapshotFirst bool
		wantRebuilt   bool // the snapshot shared the damage: refused and rebuilt
	}{
		{"truncated pack/fetch", truncatePack, "fetch", false, false},
		{"truncated pack/checkout", truncatePack, "checkout", false, false},
		{"empty refs/fetch", emptyRefs, "fetch", false, false},
		{"empty refs/checkout", emptyRefs, "checkout", false, false},
		{"corrupt packed-refs/fetch", corruptPackedRefs, "fetch", false, false},
		{"corrupt packed-refs/checkout", corruptPackedRefs, "checkout", false, false},
		{"pack truncated through a snapshot's hard link/checkout", truncatePack, "checkout", true, true},
		{"refs emptied after a snapshot/checkout", emptyRefs, "checkout", true, false},
	}
	e := newCLIEnv(t)
	repo, c := newRemote(t, 50, 12)
	gittest.Git(t, repo.Dir, "tag", "v1")
	want := gittest.Archive(t, repo.Dir, c)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := e.sub(t)
			root := t.TempDir()
			outs := t.TempDir()
			e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
			mirrorDir := filepath.Join(root, "mirrors", "demo.git")
			if tc.snapshotFirst {
				e.must(t, nil, root, "checkout", "demo", "main", filepath.Join(outs, "first"))
			}
			tc.poison(t, mirrorDir)

			var r result
			if tc.trigger == "fetch" {
				r = e.must(t, nil, root, "repo", "fetch", "demo")
			} else {
				r = e.must(t, nil, root, "--log-level", "info", "checkout", "demo", "v1", filepath.Join(outs, "out"))
			}
			if !strings.Contains(r.stderr, "mirror is broken") || !strings.Contains(r.stderr, "mirror re-cloned") {
				t.Errorf("the log does not say the mirror was broken and re-cloned:\n%s", r.stderr)
			}
			broken, _ := filepath.Glob(filepath.Join(root, "mirrors", "demo.broken-*"))
			if len(broken) != 1 {
				t.Fatalf("broken copies: %v, want one mirrors/demo.broken-<time>", broken)
			}
			if tc.trigger == "fetch" {
				r = e.must(t, nil, root, "--log-level", "info", "checkout", "demo", "v1", filepath.Join(outs, "out"))
				if strings.Contains(r.stderr, "broken") {
					t.Errorf("the re-cloned mirror was found broken again:\n%s", r.stderr)
				}
			}
			if tc.wantRebuilt != strings.Contains(r.stderr, "snapshot is corrupt") {
				t.Errorf("snapshot refused and rebuilt: %v, want %v:\n%s", !tc.wantRebuilt, tc.wantRebuilt, r.stderr)
			}
			requireTree(t, want, filepath.Join(outs, "out"))

			// The snapshot is made of the new mirror's packs, none of the
			// broken one's (unless it was made, healthy, before the damage),
			// and its packs are whole.
			snapPacks, _ := filepath.Glob(filepath.Join(root, "snapshots", c, "objects", "pack", "*.pack"))
			brokenPacks, _ := filepath.Glob(filepath.Join(broken[0], "objects", "pack", "*.pack"))
			if len(snapPacks) == 0 {
				t.Fatal("snapshot has no packs")
			}
			sort.Strings(snapPacks)
			for _, sp := range snapPacks {
				si, err := os.Stat(sp)
				if err != nil {
					t.Fatal(err)
				}
				for _, bp := range brokenPacks {
					if bi, err := os.Stat(bp); err == nil && os.SameFile(si, bi) && (!tc.snapshotFirst || tc.wantRebuilt) {
						t.Fatalf("snapshot pack %s is the broken mirror's %s", sp, bp)
					}
				}
				if _, err := gittest.GitErr("", "verify-pack", strings.TrimSuffix(sp, ".pack")+".idx"); err != nil {
					t.Fatalf("snapshot pack %s: %v", filepath.Base(sp), err)
				}
			}
			if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != c+"\n" {
				t.Fatalf("rev-parse main = %q", got)
			}
			requireNoTemps(t, root, outs)
		})
	}
}
