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
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// checkContents reads every file of the tree back from c and compares it
// with what was committed.
func checkContents(t *testing.T, snap *snapshot.Snapshot, c *snapshot.Contents, files []gittest.File) {
	t.Helper()
	ids := blobsOf(t, snap)
	distinct := map[snapshot.ID]bool{}
	for _, f := range files {
		id, ok := ids[f.Path]
		if !ok {
			t.Fatalf("%s not in the tree", f.Path)
		}
		distinct[id] = true
		off, size, ok := c.Locate(id)
		if !ok {
			t.Fatalf("%s: blob %s not in the contents file", f.Path, id)
		}
		got := make([]byte, size)
		if _, err := c.File().ReadAt(got, off); err != nil && !(err == io.EOF && size == 0) {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if !bytes.Equal(got, f.Content) {
			t.Errorf("%s: contents file holds %d bytes that differ from the %d committed", f.Path, len(got), len(f.Content))
		}
	}
	if c.Blobs() != len(distinct) {
		t.Errorf("contents file holds %d blobs, the tree has %d distinct ones", c.Blobs(), len(distinct))
	}
	if _, _, ok := c.Locate(snapshot.ID{0xff}); ok {
		t.Error("Locate found a blob that is not in the tree")
	}
}

// TestInflateMatchesContent: Inflate writes every distinct blob once, as
// committed, counts its progress, is a no-op the second time, and another
// store (process) finds and uses the published file.
func TestInflateMatchesContent(t *testing.T) {
	files := contentsFiles()
	st, _, root, commit := setup(t, files)
	snap := leased(t, st, commit)
	if _, err := snap.Contents(); !errors.Is(err, snapshot.ErrNoContents) {
		t.Fatalf("Contents before Inflate: %v, want ErrNoContents", err)
	}
	var progress atomic.Int64
	c, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 3, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkContents(t, snap, c, files)
	var total int64
	seen := map[snapshot.ID]bool{}
	for _, f := range files {
		if id := blobsOf(t, snap)[f.Path]; !seen[id] {
			seen[id] = true
			total += int64(len(f.Content))
		}
	}
	if progress.Load() != total {
		t.Errorf("progress counted %d bytes, the distinct blobs hold %d", progress.Load(), total)
	}
	// Inflating again is a no-op that returns the same file.
	c2, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 1})
	if err != nil || c2 != c {
		t.Fatalf("second Inflate: %v (same file: %v)", err, c2 == c)
	}
	c2.Close()
	noTemps(t, filepath.Join(root, "snapshots", commit))
	fi, err := os.Stat(filepath.Join(root, "snapshots", commit, "contents"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("contents file mode %v, want read-only", fi.Mode().Perm())
	}

	// Another store (another process) finds and uses the published file.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, log)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap2, release2, err := st2.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	c2, err = snap2.Contents()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	checkContents(t, snap2, c2, files)
}

// TestContentsDamaged: a damaged contents file is never served. It is
// reported as absent (and removed), and Inflate makes it again.
func TestContentsDamaged(t *testing.T) {
	files := contentsFiles()[195:] // a few small files, the versions, big, empty, copy, link
	cases := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
	}{
		{"truncated by one byte", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size-1); err != nil {
				t.Fatal(err)
			}
		}},
		{"cut in the middle", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, size/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty", func(t *testing.T, path string, size int64) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"index byte flipped", func(t *testing.T, path string, size int64) {
			flip(t, path, size-100)
		}},
		{"trailer magic flipped", func(t *testing.T, path string, size int64) {
			flip(t, path, size-56)
		}},
		{"trailer count flipped", func(t *testing.T, path string, size int64) {
			flip(t, path, size-33)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, ms, root, commit := setup(t, files)
			snap, release, err := st.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Fatal(err)
			}
			inflate(t, snap)
			release()
			path := filepath.Join(root, "snapshots", commit, "contents")
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, 0o644)
			tc.damage(t, path, fi.Size())

			// A fresh store, as a new process would open it.
			st2, err := snapshot.NewStore(root, ms, slog.New(slog.NewTextHandler(io.Discard, nil)), snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			snap2, release2, err := st2.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Fatal(err)
			}
			defer release2()
			if _, err := snap2.Contents(); !errors.Is(err, snapshot.ErrNoContents) {
				t.Fatalf("Contents of a damaged file: %v, want ErrNoContents", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("damaged contents file left in place: %v", err)
			}
			c, err := snap2.Inflate(context.Background(), snapshot.InflateOptions{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkContents(t, snap2, c, files)
		})
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestInflateBusyAndStale: while another process makes the contents file,
// Inflate returns ErrContentsBusy at once (callers read from the packs);
// a temp file left by a killed run is removed by the next one.
func TestInflateBusyAndStale(t *testing.T) {
	files := contentsFiles()[190:]
	st, _, root, commit := setup(t, files)
	snap := leased(t, st, commit)
	lock, err := locks.TryExclusive(filepath.Join(root, "locks", "snapshot-"+commit+".contents"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 2}); !errors.Is(err, snapshot.ErrContentsBusy) {
		t.Fatalf("Inflate while another holds the lock: %v, want ErrContentsBusy", err)
	}
	lock.Unlock()

	stale := filepath.Join(root, "snapshots", commit, "contents"+locks.TempMarker+"12345")
	if err := os.WriteFile(stale, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkContents(t, snap, c, files)
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file kept: %v", err)
	}
}

// TestInflateCanceled: a canceled Inflate publishes nothing and leaves no
// temp file.
func TestInflateCanceled(t *testing.T) {
	st, _, root, commit := setup(t, contentsFiles())
	snap := leased(t, st, commit)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := snap.Inflate(ctx, snapshot.InflateOptions{Workers: 2}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Inflate: %v", err)
	}
	if _, err := snap.Contents(); !errors.Is(err, snapshot.ErrNoContents) {
		t.Fatalf("Contents after a canceled Inflate: %v", err)
	}
	noTemps(t, filepath.Join(root, "snapshots", commit))
}

// TestDropContents: gc can drop contents files; open blobs keep reading,
// and the next Inflate makes the file again.
func TestDropContents(t *testing.T) {
	files := contentsFiles()[180:]
	st, _, root, commit := setup(t, files)
	snap := leased(t, st, commit)
	inflate(t, snap)
	f := files[0]
	b, err := snap.Open(blobsOf(t, snap)[f.Path])
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	freed, err := st.DropContents()
	if err != nil {
		t.Fatal(err)
	}
	if freed == 0 {
		t.Error("DropContents freed nothing")
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit, "contents")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("contents file after DropContents: %v", err)
	}
	got := make([]byte, b.Size())
	if _, err := b.ReadAt(got, 0); err != nil && !(err == io.EOF && len(got) == 0) {
		t.Fatalf("blob opened before the drop: %v", err)
	}
	if !bytes.Equal(got, f.Content) {
		t.Fatalf("blob opened before the drop reads %d bytes that differ from the %d committed", len(got), len(f.Content))
	}
	if _, err := snap.Contents(); !errors.Is(err, snapshot.ErrNoContents) {
		t.Fatalf("Contents after DropContents: %v", err)
	}
	c, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkContents(t, snap, c, files)
}

// TestInflateEarly: an early Inflate hands back a usable file before it is
// synced and published; Close waits for the publish.
func TestInflateEarly(t *testing.T) {
	files := contentsFiles()[150:]
	st, _, root, commit := setup(t, files)
	snap := leased(t, st, commit)
	c, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 2, Early: true})
	if err != nil {
		t.Fatal(err)
	}
	checkContents(t, snap, c, files)
	c.Close()
	path := filepath.Join(root, "snapshots", commit, "contents")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("contents file not published once Close returned: %v", err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("contents file mode %v, want read-only", fi.Mode().Perm())
	}
	noTemps(t, filepath.Join(root, "snapshots", commit))
	// The snapshot keeps using it, and another Inflate is a no-op.
	c2, err := snap.Inflate(context.Background(), snapshot.InflateOptions{Workers: 1, Early: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	checkContents(t, snap, c2, files)
}
