package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// checkStored reads every file of the tree back from the blob store alone
// and compares it with what was committed.
func checkStored(t *testing.T, st *snapshot.Store, snap *snapshot.Snapshot, files []gittest.File) {
	t.Helper()
	ids := blobsOf(t, snap)
	for _, f := range files {
		id, ok := ids[f.Path]
		if !ok {
			t.Fatalf("%s not in the tree", f.Path)
		}
		b, err := st.Stored(id, int64(len(f.Content)))
		if err != nil {
			t.Fatalf("%s: blob %s: %v", f.Path, id, err)
		}
		got := make([]byte, b.Size())
		if _, err := b.ReadAt(got, 0); err != nil && !(err == io.EOF && len(got) == 0) {
			t.Fatalf("%s: %v", f.Path, err)
		}
		b.Close()
		if !bytes.Equal(got, f.Content) {
			t.Errorf("%s: stored %d bytes that differ from the %d committed", f.Path, len(got), len(f.Content))
		}
	}
}

// TestFill: Fill stores every distinct blob once, as committed, with git
// cat-file and with the Go reader, counts its progress, stores nothing
// the second time, and another store (process) finds what it stored.
func TestFill(t *testing.T) {
	for _, tc := range []struct {
		name string
		goRd bool
	}{{"git cat-file", false}, {"go", true}} {
		t.Run(tc.name, func(t *testing.T) {
			files := contentsFiles()
			st, _, root, commit := setup(t, files)
			snap := leased(t, st, commit)
			var progress atomic.Int64
			fs, err := snap.Fill(context.Background(), snapshot.FillOptions{Workers: 3, Progress: &progress, Go: tc.goRd})
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			seen := map[snapshot.ID]bool{}
			for _, f := range files {
				if id := blobsOf(t, snap)[f.Path]; !seen[id] {
					seen[id] = true
					total += int64(len(f.Content))
				}
			}
			if fs.Blobs != len(seen) || fs.Missing != len(seen) || fs.Bytes != total || progress.Load() != total {
				t.Errorf("fill %+v, progress %d; the tree has %d distinct blobs of %d bytes", fs, progress.Load(), len(seen), total)
			}
			checkStored(t, st, snap, files)
			fs, err = snap.Fill(context.Background(), snapshot.FillOptions{Workers: 1, Go: tc.goRd})
			if err != nil || fs.Missing != 0 {
				t.Errorf("second fill: %+v %v, want nothing missing", fs, err)
			}
			if tmps, _ := os.ReadDir(filepath.Join(root, "blobs", "tmp")); len(tmps) != 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			ms, err := mirror.Open(root, log)
			if err != nil {
				t.Fatal(err)
			}
			st2, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkStored(t, st2, leased(t, st2, commit), files)
		})
	}
}

// TestFillNextCommit: the next commit's fill stores only what it does not
// share with the one filled before (the CI flow: one job at A, the next
// at B).
func TestFillNextCommit(t *testing.T) {
	files := gittest.Generate(300, 5)
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "first", files)
	root := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Add(context.Background(), "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leased(t, st, commit).Fill(context.Background(), snapshot.FillOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	next := append([]gittest.File(nil), files...)
	for i := 0; i < 3; i++ {
		next[i*100].Content = append([]byte("changed "), next[i*100].Content...)
	}
	c2 := repo.Commit(t, "main", "next", next)
	if _, err := ms.Fetch(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	snap2 := leased(t, st, c2)
	fs, err := snap2.Fill(context.Background(), snapshot.FillOptions{Workers: 2})
	if err != nil || fs.Missing != 3 {
		t.Fatalf("fill of the next commit: %+v %v, want 3 blobs missing", fs, err)
	}
	// Only the changed directories were walked: the others were found
	// whole by the first fill.
	if fs.TreesSkipped == 0 || fs.Blobs >= len(files)/2 {
		t.Errorf("fill of the next commit checked %d blobs and skipped %d trees; want most of the tree skipped", fs.Blobs, fs.TreesSkipped)
	}

	// A blob store moved aside and made anew (an admin freeing space, or
	// the benchmark's empty store) is a new generation, though no blob
	// was removed from it.
	blobs := filepath.Join(root, "blobs")
	if err := os.Rename(blobs, filepath.Join(root, "blobs-aside")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(blobs, "tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	fs, err = snap2.Fill(context.Background(), snapshot.FillOptions{Workers: 2})
	if err != nil || fs.TreesSkipped != 0 || fs.Missing != fs.Blobs {
		t.Fatalf("fill into a new blob store: %+v %v, want every blob stored again", fs, err)
	}
	checkStored(t, st, snap2, next)

	// A blob removed (here found of the wrong size) moves the store's
	// generation: the next fill trusts nothing it remembered and stores
	// the blob again.
	f := next[150]
	id := blobsOf(t, snap2)[f.Path]
	h := id.String()
	if err := os.Truncate(filepath.Join(root, "blobs", h[:2], h[2:]), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stored(id, int64(len(f.Content))); !errors.Is(err, snapshot.ErrNotStored) {
		t.Fatalf("a stored blob of the wrong size: %v, want ErrNotStored", err)
	}
	fs, err = snap2.Fill(context.Background(), snapshot.FillOptions{Workers: 2})
	if err != nil || fs.Missing != 1 || fs.TreesSkipped != 0 {
		t.Fatalf("fill after a blob was removed: %+v %v, want the whole tree checked and 1 blob missing", fs, err)
	}
	checkStored(t, st, snap2, next)

}

// TestFillCancelled: a cancelled fill says so and leaves nothing half
// written.
func TestFillCancelled(t *testing.T) {
	files := contentsFiles()
	st, _, root, commit := setup(t, files)
	snap := leased(t, st, commit)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := snap.Fill(ctx, snapshot.FillOptions{Workers: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fill: %v", err)
	}
	if tmps, _ := os.ReadDir(filepath.Join(root, "blobs", "tmp")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestTrimKeepsLeased: trimming to nothing removes no blob of a leased
// snapshot, all of an unleased one, and a blob opened before stays
// readable.
func TestTrimKeepsLeased(t *testing.T) {
	files := contentsFiles()
	st, _, _, commit := setup(t, files)
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Fill(context.Background(), snapshot.FillOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	ids := blobsOf(t, snap)
	r, err := st.TrimBlobs(context.Background(), 0)
	if err != nil || r.Removed != 0 {
		t.Fatalf("trim with the snapshot leased: %+v %v, want nothing removed", r, err)
	}
	big := files[len(files)-4]
	b, err := st.Stored(ids[big.Path], int64(len(big.Content)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release()
	r, err = st.TrimBlobs(context.Background(), 0)
	if err != nil || r.Left.Blobs != 0 || r.Removed == 0 {
		t.Fatalf("trim with nothing leased: %+v %v, want everything removed", r, err)
	}
	got := make([]byte, b.Size())
	if _, err := b.ReadAt(got, 0); err != nil || !bytes.Equal(got, big.Content) {
		t.Errorf("a blob opened before its trim reads %d bytes (%v)", len(got), err)
	}
}

// TestDropContents: contents files of older versions go, with what they
// held.
func TestDropContents(t *testing.T) {
	st, _, root, commit := setup(t, contentsFiles()[:10])
	leased(t, st, commit)
	p := filepath.Join(root, "snapshots", commit, "contents")
	if err := os.WriteFile(p, make([]byte, 1234), 0o444); err != nil {
		t.Fatal(err)
	}
	freed, err := st.DropContents()
	if err != nil || freed != 1234 {
		t.Fatalf("DropContents: %d %v", freed, err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("contents file left: %v", err)
	}
}
