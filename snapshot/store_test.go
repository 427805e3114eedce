package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/snapshot"
)

// TestBuildOnce: stores of separate "processes" asking for the same
// commit at once build it once.
func TestBuildOnce(t *testing.T) {
	root, commit, _ := setupMirror(t)
	log := &syncLog{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		st := openStore(t, root, log)
		for j := 0; j < 3; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				snap, release, err := st.Get(context.Background(), "demo", commit)
				if err != nil {
					t.Error(err)
					return
				}
				defer release()
				if snap.Commit() != commit {
					t.Errorf("got snapshot of %s", snap.Commit())
				}
			}()
		}
	}
	wg.Wait()
	if n := log.count("snapshot created"); n != 1 {
		t.Fatalf("%d snapshots built, want 1", n)
	}
	if !snapshot.Published(root, commit) || snapshot.Published(root, "nope") {
		t.Fatal("Published is wrong")
	}
	noTemps(t, root)
}

// TestCorruptSnapshotRefused: a published snapshot whose pinned pack
// was truncated (through the hard link it shares with the mirror) is never
// served: it is discarded and rebuilt from the repaired mirror, or, with no
// repository to rebuild from, refused with an error.
func TestCorruptSnapshotRefused(t *testing.T) {
	tests := []struct {
		name    string
		repo    string
		wantErr bool
	}{
		{"rebuilt from the repaired mirror", "demo", false},
		{"refused without a repository", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, commit, _ := setupMirror(t)
			st := openStore(t, root, &syncLog{})
			_, release, err := st.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Fatal(err)
			}
			release()
			packs, _ := filepath.Glob(filepath.Join(root, "snapshots", commit, "objects", "pack", "*.pack"))
			if len(packs) == 0 {
				t.Fatal("no pinned pack")
			}
			for _, p := range packs {
				st, _ := os.Stat(p)
				if err := os.Truncate(p, st.Size()-100); err != nil {
					t.Fatal(err)
				}
			}
			log := &syncLog{}
			snap, release, err := openStore(t, root, log).Get(context.Background(), tc.repo, commit)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Get: %v, want error=%v", err, tc.wantErr)
			}
			if log.count("snapshot is corrupt") != 1 {
				t.Errorf("corruption not logged: %s", log.b.String())
			}
			if err != nil {
				if !strings.Contains(err.Error(), "corrupt") {
					t.Errorf("error %q does not say the snapshot is corrupt", err)
				}
				return
			}
			defer release()
			// Every blob reads back whole.
			var walk func(id snapshot.ID) int
			walk = func(id snapshot.ID) int {
				entries, err := snap.Tree(id)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, e := range entries {
					if e.Kind == snapshot.Dir {
						n += walk(e.ID)
						continue
					}
					r, size, err := snap.Stream(e.ID)
					if err != nil {
						t.Fatalf("%s: %v", e.Name, err)
					}
					var b bytes.Buffer
					if _, err := b.ReadFrom(r); err != nil || int64(b.Len()) != size {
						t.Fatalf("%s: read %d of %d bytes: %v", e.Name, b.Len(), size, err)
					}
					r.Close()
					n++
				}
				return n
			}
			if n := walk(snap.Root()); n != 60 {
				t.Fatalf("read %d files, want 60", n)
			}
			if log.count("snapshot created") != 1 {
				t.Errorf("snapshot not rebuilt: %s", log.b.String())
			}
			noTemps(t, root)
		})
	}
}

// TestGCAcrossStores: a lease held through one store keeps the
// snapshot through another store's GC.
func TestGCAcrossStores(t *testing.T) {
	root, commit, _ := setupMirror(t)
	a, b := openStore(t, root, &syncLog{}), openStore(t, root, &syncLog{})
	_, release, err := a.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := b.GC(context.Background(), nil); err != nil || len(removed) != 0 {
		t.Fatalf("GC under another store's lease removed %v, %v", removed, err)
	}
	release()
	if removed, err := b.GC(context.Background(), nil); err != nil || len(removed) != 1 {
		t.Fatalf("GC removed %v, %v; want the snapshot", removed, err)
	}
	if snapshot.Published(root, commit) {
		t.Fatal("still published")
	}
}

// TestGCRespectsLeases: gc removes a snapshot only once no lease holds it
// and keep does not name it.
func TestGCRespectsLeases(t *testing.T) {
	st, _, root, commit := setup(t, []gittest.File{{Path: "a", Content: []byte("a")}})
	_, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := st.GC(context.Background(), nil)
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc with a lease removed %v, %v", removed, err)
	}
	release()
	removed, err = st.GC(context.Background(), map[string]bool{commit: true})
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc with keep removed %v, %v", removed, err)
	}
	removed, err = st.GC(context.Background(), nil)
	if err != nil || len(removed) != 1 {
		t.Fatalf("gc removed %v, %v; want the snapshot", removed, err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); !os.IsNotExist(err) {
		t.Fatalf("snapshot dir still there: %v", err)
	}
}

// TestLeasesWithFillAndTrimConcurrently: leases are taken and released,
// the last release closing the snapshot, while blobs are read through the
// blob store, which is trimmed to nothing and filled again meanwhile.
// Every read gives the committed bytes.
func TestLeasesWithFillAndTrimConcurrently(t *testing.T) {
	files := contentsFiles()[190:]
	st, _, _, commit := setup(t, files)
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, snap)
	ids := blobsOf(t, snap)
	release()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				snap, release, err := st.Get(context.Background(), "demo", commit)
				if err != nil {
					t.Error(err)
					return
				}
				for _, f := range files {
					b, err := snap.Open(ids[f.Path])
					if err != nil {
						t.Errorf("%s: %v", f.Path, err)
						break
					}
					got := make([]byte, b.Size())
					if _, err := b.ReadAt(got, 0); (err != nil && err != io.EOF) || !bytes.Equal(got, f.Content) {
						t.Errorf("%s: %d bytes differ from the %d committed (%v)", f.Path, len(got), len(f.Content), err)
					}
					b.Close()
				}
				release()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			if _, err := st.TrimBlobs(context.Background(), 0); err != nil {
				t.Error(err)
			}
			snap, release, err := st.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := snap.Fill(context.Background(), snapshot.FillOptions{Workers: 2}); err != nil {
				t.Error(err)
			}
			release()
		}
	}()
	wg.Wait()
}
