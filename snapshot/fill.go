package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfs/gitfs/internal/blobstore"
)

// Filling the blob store. Every blob of a snapshot's tree that the store
// lacks is inflated once, in pack order (each delta's base comes before
// it, so a base is inflated once and found in the cache by the deltas
// after it), verified against its id and published (internal/blobstore).
//
// Inflating is done by `git cat-file --batch` over the pinned packs when
// git is there, by internal/pack otherwise: measured on a 20k-file tree
// repacked as git does (deltas, 88 MB pack, 270 MB of blobs), cat-file
// inflated every blob in 0.9 s against 1.9 s for the Go reader (Go's
// zlib and delta patching are about half C zlib's speed); on a pack
// without deltas both took ~2 s. Each worker runs one cat-file on its own
// contiguous run of the pack-ordered list.

// FillOptions tune Fill.
type FillOptions struct {
	Workers  int           // inflating in parallel; at least 1
	Progress *atomic.Int64 // if set, bytes stored so far are added here
	// Go inflates with internal/pack even when git is there (tests).
	Go bool
}

// FillStats is what a Fill did.
type FillStats struct {
	Blobs   int   // distinct blobs of the tree checked
	Missing int   // of them, not in the store before
	Bytes   int64 // bytes stored
	// Trees found whole by an earlier fill of this process (and not
	// walked again): a commit next to one filled before checks only what
	// changed.
	TreesSkipped int
}

// Fill stores every blob of the snapshot's tree that the blob store lacks.
// Concurrent fills of overlapping trees, in this process or others, may
// inflate a blob twice; both publish the same verified bytes.
func (s *Snapshot) Fill(ctx context.Context, opts FillOptions) (FillStats, error) {
	var st FillStats
	gen, genOK := s.store.stored.Generation()
	whole := func(ID) bool { return false } // nothing, if the generation cannot be read
	if genOK {
		whole = func(id ID) bool { return s.store.whole.has(gen, id) }
	}
	ids, walked, err := s.blobIDsSkipping(ctx, whole)
	if err != nil {
		return st, fmt.Errorf("snapshot %s: fill: %w", s.meta.Commit, err)
	}
	st.Blobs = len(ids)
	st.TreesSkipped = walked.skipped
	var missing []ID
	sizes := make(map[ID]int64, len(ids))
	for _, id := range ids {
		// A size known in memory costs one stat to check; otherwise the
		// store's record (a getxattr and a stat) spares the packs. Most of
		// a new commit's blobs are known one way or the other: the filler
		// runs for every snapshot leased, and competes with the reads.
		if size, ok := s.store.sizes.Get(string(id[:])); ok {
			if !s.store.stored.Has(id, size) {
				missing = append(missing, id)
				sizes[id] = size
			}
			continue
		}
		if n, ok := s.store.stored.StoredSize(id); ok {
			s.store.sizes.Set(string(id[:]), n, 64)
			continue
		}
		size, err := s.Size(id)
		if err != nil {
			return st, fmt.Errorf("snapshot %s: fill: %w", s.meta.Commit, err)
		}
		if !s.store.stored.Has(id, size) {
			missing = append(missing, id)
			sizes[id] = size
		}
	}
	st.Missing = len(missing)
	if len(missing) == 0 {
		s.store.rememberWhole(gen, genOK, walked.trees)
		return st, nil
	}
	s.store.cleanTemps.Do(s.store.stored.CleanTemps) // what killed fills left
	s.packs.SortByPackOrder(missing)
	workers := max(1, min(opts.Workers, (len(missing)+63)/64))
	var stored atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for w := 0; w < workers; w++ {
		run := missing[w*len(missing)/workers : (w+1)*len(missing)/workers]
		g.Go(func() error {
			count := func(n int64) {
				stored.Add(n)
				if opts.Progress != nil {
					opts.Progress.Add(n)
				}
			}
			if !opts.Go {
				err := s.fillWithGit(gctx, run, sizes, count)
				if !errors.Is(err, ErrNoGit) {
					return err
				}
			}
			return s.fillWithGo(gctx, run, sizes, count)
		})
	}
	err = g.Wait()
	st.Bytes = stored.Load()
	if err != nil {
		return st, fmt.Errorf("snapshot %s: fill: %w", s.meta.Commit, err)
	}
	s.store.rememberWhole(gen, genOK, walked.trees)
	return st, nil
}

// maxWholeTrees bounds the trees remembered whole (about 60 bytes each).
const maxWholeTrees = 1 << 18

// rememberWhole records trees a fill found or made whole (every blob under
// them stored) at blob store generation gen, unless blobs were removed
// while it ran (the generation moved from gen).
func (st *Store) rememberWhole(gen string, genOK bool, trees []ID) {
	if now, ok := st.stored.Generation(); !genOK || !ok || now != gen {
		return
	}
	st.whole.add(gen, trees)
}

// fillWithGo stores ids, inflated by internal/pack.
func (s *Snapshot) fillWithGo(ctx context.Context, ids []ID, sizes map[ID]int64, count func(int64)) error {
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.store.stored.Has(id, sizes[id]) {
			continue // a reader or another fill stored it meanwhile
		}
		r, size, err := s.packs.OpenBlobCaching(id)
		if err != nil {
			return err
		}
		err = s.store.stored.Put(id, size, r)
		r.Close()
		if err != nil {
			return err
		}
		count(size)
	}
	return nil
}

// fillWithGit stores ids, inflated by one `git cat-file --batch` (Batch).
// The ids are asked for a run at a time, a run small enough for the pipe
// to git to hold whole: git answers while it reads, so a request that
// blocked on a full pipe would stall both sides.
func (s *Snapshot) fillWithGit(ctx context.Context, ids []ID, sizes map[ID]int64, count func(int64)) (err error) {
	b, err := s.OpenBatch(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); err == nil {
			err = cerr
		}
	}()
	const run = 512 // 21 KB of ids; a pipe holds 64 KiB
	for lo := 0; lo < len(ids); lo += run {
		chunk := ids[lo:min(lo+run, len(ids))]
		if err := b.Request(chunk...); err != nil {
			return err
		}
		for _, id := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := s.storeFromBatch(b, id, sizes[id], count); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeFromBatch stores blob id, the next answer of b, checking it has
// the size the pack gave.
func (s *Snapshot) storeFromBatch(b *Batch, id ID, want int64, count func(int64)) error {
	return b.Read(id, func(r io.Reader, size int64) error {
		if size != want {
			return fmt.Errorf("git cat-file: blob %s: size %d, the pack says %d", id, size, want)
		}
		w, err := s.store.stored.Create(id, size)
		if err != nil {
			return err
		}
		if _, err := io.CopyN(w, r, size); err != nil {
			w.Abort()
			return fmt.Errorf("git cat-file: blob %s: %w", id, noEOF(err))
		}
		if err := w.Commit(); err != nil {
			return err
		}
		w.Close()
		count(size)
		return nil
	})
}

// readerGitDir is an empty git directory (HEAD, refs/, objects/) under
// ROOT/snapshots, made once, for git to accept as a repository while it
// reads only the objects directory it is given.
func (s *Store) readerGitDir() (string, error) {
	s.readerOnce.Do(func() {
		dir := filepath.Join(s.dir, ".git-reader")
		s.readerDir, s.readerErr = dir, func() error {
			if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
				return nil
			}
			for _, d := range []string{"objects", "refs"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
					return err
				}
			}
			tmp := filepath.Join(dir, "HEAD.tmp-"+strconv.Itoa(os.Getpid()))
			if err := os.WriteFile(tmp, []byte("ref: refs/heads/none\n"), 0o600); err != nil {
				return err
			}
			return os.Rename(tmp, filepath.Join(dir, "HEAD"))
		}()
	})
	return s.readerDir, s.readerErr
}

// readerEnv is cat-file's environment: the reader git dir, the snapshot's
// objects as its only object directory, no configuration but git's
// defaults, and nothing inherited that points git elsewhere.
func readerEnv(gitDir, objects string) []string {
	env := make([]string, 0, len(os.Environ())+6)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "GIT_") {
			env = append(env, kv)
		}
	}
	return append(env, "GIT_DIR="+gitDir, "GIT_OBJECT_DIRECTORY="+objects,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "LC_ALL=C")
}

// Background filling: a daemon (FillInBackground) fills every snapshot it
// takes a lease on, once per process per snapshot, one snapshot at a time
// and with few workers, so that reads keep most of the machine. Reads never
// wait for it (invariant 2): a blob not stored yet is read from the packs.

// FillInBackground makes the store fill each snapshot's blobs in the
// background when it is first leased in this process (Get), with workers
// inflating in parallel, and, once a fill stored anything, trim the blob
// store to its bound (SetBlobLimit). Call it once, before any Get.
func (s *Store) FillInBackground(workers int) {
	s.fillq = make(chan *Snapshot, 1024)
	s.filled = map[string]bool{}
	go s.filler(max(1, workers))
}

// queueFill asks for snap to be filled unless it was this process's
// already. Never blocks: a full queue drops the job. Caller holds s.mu.
func (s *Store) queueFill(snap *Snapshot) {
	if s.fillq == nil || s.filled[snap.meta.Commit] {
		return
	}
	s.filled[snap.meta.Commit] = true
	snap.refs++ // the filler's reference, dropped when done
	select {
	case s.fillq <- snap:
	default:
		snap.refs--
		delete(s.filled, snap.meta.Commit)
	}
}

func (s *Store) filler(workers int) {
	for snap := range s.fillq {
		start := time.Now()
		st, err := snap.Fill(context.Background(), FillOptions{Workers: workers})
		commit := snap.meta.Commit
		s.releaseSnap(snap)
		switch {
		case err != nil:
			s.log.Warn("blob store: filling a snapshot failed (its blobs are read from the packs)", "commit", commit, "err", err)
			s.mu.Lock()
			delete(s.filled, commit) // the next lease tries again
			s.mu.Unlock()
		case st.Missing > 0:
			s.log.Info("blob store: snapshot filled", "commit", commit, "blobs", st.Missing, "bytes", st.Bytes,
				"took", time.Since(start).Round(time.Millisecond))
			if _, err := s.trimBlobs(context.Background(), s.BlobLimit(), true); err != nil {
				s.log.Warn("blob store: trim failed", "err", err)
			}
		}
	}
}

// Stored opens blob id from the blob store alone (no snapshot needed): a
// reader whose snapshot is gone still finds what was stored.
func (s *Store) Stored(id ID, size int64) (Blob, error) {
	f, err := s.stored.Open(id, size)
	if err != nil {
		return nil, err
	}
	s.counts.add(FromBlobFile, size)
	return fileBlob{f, size}, nil
}

// StoredFD opens blob id of the snapshot from the blob store as a bare
// descriptor (for a checkout to copy from), with its size; ErrNotStored
// if the store lacks it.
func (s *Snapshot) StoredFD(id ID) (int, int64, error) {
	// The size (a delta's header inflated) only once the blob is there:
	// a checkout of a commit the store lacks asks for every blob.
	return s.store.stored.OpenFDCheck(id, func() (int64, error) { return s.Size(id) })
}

// StoreSharesBlocksWith tells whether files created in dirfd can share
// blocks with the blob store (see blobstore.Store.SharesBlocksWith).
func (s *Snapshot) StoreSharesBlocksWith(dirfd int, mkTarget func(func() error) error) bool {
	return s.store.stored.SharesBlocksWith(dirfd, mkTarget)
}

// ErrNotStored means a blob is not in the blob store.
var ErrNotStored = blobstore.ErrNotStored

// blobIDs lists every distinct blob of the tree, in tree order. Each
// distinct subtree is walked once: a tree that repeats one subtree at many
// places must cost its size, not the number of paths it expands to.
func (s *Snapshot) blobIDs(ctx context.Context) ([]ID, error) {
	ids, _, err := s.blobIDsSkipping(ctx, func(ID) bool { return false })
	return ids, err
}

// walkedTrees are the trees a blobIDsSkipping walked, and how many it
// skipped.
type walkedTrees struct {
	trees   []ID
	skipped int
}

// blobIDsSkipping is blobIDs of the trees not skip.
func (s *Snapshot) blobIDsSkipping(ctx context.Context, skip func(ID) bool) ([]ID, walkedTrees, error) {
	seen := make(map[ID]struct{})
	walked := make(map[ID]struct{})
	var w walkedTrees
	var ids []ID
	var walk func(tree ID) error
	walk = func(tree ID) error {
		if _, ok := walked[tree]; ok {
			return nil
		}
		walked[tree] = struct{}{}
		if skip(tree) {
			w.skipped++
			return nil
		}
		w.trees = append(w.trees, tree)
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := s.Tree(tree)
		if err != nil {
			return err
		}
		for _, e := range entries {
			switch e.Kind {
			case Dir:
				if err := walk(e.ID); err != nil {
					return err
				}
			case File, Executable, Symlink:
				if _, ok := seen[e.ID]; !ok {
					seen[e.ID] = struct{}{}
					ids = append(ids, e.ID)
				}
			}
		}
		return nil
	}
	err := walk(s.tree)
	return ids, w, err
}
