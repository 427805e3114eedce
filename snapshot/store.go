package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/go-git/go-git/v5/plumbing"
	"golang.org/x/sync/singleflight"

	"github.com/gitfs/gitfs/internal/blobstore"
	"github.com/gitfs/gitfs/internal/pack"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// Options bound the store's caches and what one tree may hold.
type Options struct {
	TreeCacheBytes int64 // decoded trees; default 64 MiB
	// BlobCacheBytes bounds small blobs kept in memory: those read from the
	// packs before the blob store had them, and converted ones
	// (.gitattributes); default 64 MiB. Stored blobs are read from their
	// files (and the page cache), not kept here.
	BlobCacheBytes int64
	MemBlobMax     int64 // larger blobs go to the on-disk cache; default 4 MiB
	// MaxTreeEntries refuses a tree with more entries (default
	// DefaultMaxTreeEntries, 262144). It bounds what decoding or browsing
	// one tree can pin in memory (~70 bytes an entry decoded, more in the
	// FUSE layer's listing): a "tree bomb", one tree of 1.5 M entries that
	// passes git fsck, grew the daemon to 2 GB when browsed. Real
	// directories stay far below it.
	MaxTreeEntries int
}

// Store creates, leases, reads and collects snapshots under one root.
type Store struct {
	root    string
	dir     string           // ROOT/snapshots
	stored  *blobstore.Store // ROOT/blobs: every inflated blob, by id (fill.go)
	lockDir string           // ROOT/locks
	mirrors *mirror.Set
	log     *slog.Logger
	opts    Options

	building singleflight.Group // one build per commit in this process
	inflate  singleflight.Group // one reader's inflation into ROOT/blobs per large blob

	// Background filling (fill.go); nil fillq: none. filled is guarded
	// by mu.
	fillq     chan *Snapshot
	filled    map[string]bool // commits this process has queued
	blobLimit atomic.Int64    // bound of ROOT/blobs in bytes (SetBlobLimit)

	// whole are trees whose blobs a fill found stored, tagged with the
	// blob store's generation then (fill.go); attrFree, trees without a
	// .gitattributes at any depth (worktree.go).
	whole, attrFree idSet

	cleanTemps sync.Once // the blob store's dead writers' files, at the first fill
	readerOnce sync.Once // readerGitDir
	readerDir  string
	readerErr  error

	// mu guards open, each open Snapshot's refs and filled; a leaf but for
	// opening a snapshot on its first lease, the one wait (I/O) under it.
	mu   sync.Mutex
	open map[string]*Snapshot // snapshots with live references, by commit

	// Content-addressed, so shared by every snapshot.
	trees *ristretto.Cache[string, []Entry]
	sizes *ristretto.Cache[string, int64]
	blobs *ristretto.Cache[string, []byte]

	counts blobCounters // Open by source (metrics.go)
}

// NewStore opens the snapshot store under root.
func NewStore(root string, mirrors *mirror.Set, log *slog.Logger, opts Options) (*Store, error) {
	if opts.TreeCacheBytes == 0 {
		opts.TreeCacheBytes = 64 << 20
	}
	if opts.BlobCacheBytes == 0 {
		opts.BlobCacheBytes = 64 << 20
	}
	if opts.MemBlobMax == 0 {
		opts.MemBlobMax = 4 << 20
	}
	if opts.MaxTreeEntries <= 0 {
		opts.MaxTreeEntries = DefaultMaxTreeEntries
	}
	s := &Store{
		root:    root,
		dir:     filepath.Join(root, "snapshots"),
		lockDir: filepath.Join(root, "locks"),
		mirrors: mirrors,
		log:     log,
		opts:    opts,
		open:    make(map[string]*Snapshot),
	}
	s.whole.max, s.attrFree.max = maxWholeTrees, maxAttrFreeTrees
	for _, d := range []string{s.dir, s.lockDir, s.verifiedDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
	}
	var err error
	if s.stored, err = blobstore.Open(filepath.Join(root, "blobs")); err != nil {
		return nil, err
	}
	s.blobLimit.Store(DefaultBlobLimit)
	if s.trees, err = newCache[[]Entry](opts.TreeCacheBytes); err != nil {
		return nil, err
	}
	if s.sizes, err = newCache[int64](16 << 20); err != nil {
		return nil, err
	}
	if s.blobs, err = newCache[[]byte](opts.BlobCacheBytes); err != nil {
		return nil, err
	}
	return s, nil
}

func newCache[V any](maxBytes int64) (*ristretto.Cache[string, V], error) {
	return ristretto.NewCache(&ristretto.Config[string, V]{
		NumCounters:        maxBytes / 100, // ~10 counters per expected item
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		Metrics:            true, // hits, misses, evictions for the daemon's metrics
	})
}

// verifiedDir remembers packs whose trailing checksum was checked, as
// empty files named "<pack>-<size>": a pack's name is its checksum, so it
// never needs checking twice.
func (s *Store) verifiedDir() string { return filepath.Join(s.dir, ".verified-packs") }

func (s *Store) snapDir(commit string) string { return filepath.Join(s.dir, commit) }

// leasePath is the flock a user of a snapshot holds shared; gc takes it
// exclusively (without waiting) before removing the snapshot.
func (s *Store) leasePath(commit string) string {
	return filepath.Join(s.lockDir, "snapshot-"+commit+".lease")
}

// buildPath is the flock held exclusively while the snapshot is built, so
// that processes asking for the same commit build it once.
func (s *Store) buildPath(commit string) string {
	return filepath.Join(s.lockDir, "snapshot-"+commit+".build")
}

// Published reports whether a snapshot of commit is published under root,
// without opening (or creating) the store.
func Published(root, commit string) bool {
	if !mirror.IsFullSHA(commit) {
		return false
	}
	_, err := os.Stat(filepath.Join(root, "snapshots", commit, "meta.json"))
	return err == nil
}

// publishedFrom reports whether a snapshot of commit is published under
// root and was built from repository repo.
func publishedFrom(root, commit, repo string) bool {
	if !mirror.IsFullSHA(commit) {
		return false
	}
	b, err := os.ReadFile(filepath.Join(root, "snapshots", commit, "meta.json"))
	if err != nil {
		return false
	}
	var meta Meta
	return json.Unmarshal(b, &meta) == nil && meta.Commit == commit && meta.Repo != "" && meta.Repo == repo
}

// Has reports whether a published snapshot of commit exists.
func (s *Store) Has(commit string) bool {
	_, err := os.Stat(filepath.Join(s.snapDir(commit), "meta.json"))
	return err == nil
}

// Get returns the snapshot of commit, building it from repo's mirror if it
// does not exist yet, and a release function. Until release is called the
// snapshot is leased: no gc, in this process or another, removes it.
func (s *Store) Get(ctx context.Context, repo, commit string) (*Snapshot, func(), error) {
	if !mirror.IsFullSHA(commit) {
		return nil, nil, fmt.Errorf("snapshot %q: not a full commit id", commit)
	}
	lease, err := locks.Shared(ctx, s.leasePath(commit))
	if err != nil {
		return nil, nil, err
	}
	s.touchLease(commit) // gc --snapshot-ttl ages snapshots by last use (housekeeping.go)
	if !s.Has(commit) {
		if repo == "" {
			lease.Unlock()
			return nil, nil, fmt.Errorf("snapshot %s: not built and no repository given", commit)
		}
		_, err, _ := s.building.Do(commit, func() (any, error) {
			return nil, s.build(ctx, repo, commit, false)
		})
		if err != nil {
			lease.Unlock()
			return nil, nil, err
		}
	}
	snap, err := s.acquire(commit)
	if errors.Is(err, errCorrupt) {
		// Never serve it. Discard it and build it again from the mirror
		// (which, sharing the pack through a hard link, is repaired first).
		s.log.Warn("snapshot is corrupt: discarding it", "commit", commit, "problem", err.Error())
		if repo == "" {
			lease.Unlock()
			return nil, nil, fmt.Errorf("%w; no repository given to rebuild it from", err)
		}
		_, err, _ = s.building.Do(commit, func() (any, error) {
			return nil, s.build(ctx, repo, commit, true)
		})
		if err == nil {
			snap, err = s.acquire(commit)
		}
	}
	if err != nil {
		lease.Unlock()
		return nil, nil, err
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			s.releaseSnap(snap)
			lease.Unlock()
		})
	}
	return snap, release, nil
}

func (s *Store) acquire(commit string) (*Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if snap := s.open[commit]; snap != nil {
		snap.refs++
		return snap, nil
	}
	snap, err := s.openSnap(commit)
	if err != nil {
		return nil, err
	}
	snap.refs = 1
	s.open[commit] = snap
	s.queueFill(snap)
	return snap, nil
}

// releaseSnap drops one reference; the last closes the snapshot's packs.
// Once out of s.open no one can reach the snapshot through the store, so
// it is closed after s.mu is let go.
func (s *Store) releaseSnap(snap *Snapshot) {
	s.mu.Lock()
	snap.refs--
	last := snap.refs == 0
	if last {
		delete(s.open, snap.meta.Commit)
	}
	s.mu.Unlock()
	if !last {
		return
	}
	snap.packs.Close()
}

func (s *Store) openSnap(commit string) (*Snapshot, error) {
	dir := s.snapDir(commit)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", commit, err)
	}
	var meta Meta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("snapshot %s: meta: %w", commit, err)
	}
	packDir := filepath.Join(dir, "objects", "pack")
	if err := s.checkPinned(packDir, meta.Packs); isCorrupt(err) {
		return nil, fmt.Errorf("snapshot %s: %w: %w", commit, errCorrupt, err)
	} else if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", commit, err)
	}
	packs, err := pack.OpenSet(packDir, meta.Packs)
	if isCorrupt(err) {
		return nil, fmt.Errorf("snapshot %s: %w: %w", commit, errCorrupt, err)
	} else if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", commit, err)
	}
	return &Snapshot{meta: meta, dir: dir, tree: plumbing.NewHash(meta.Tree), packs: packs, store: s}, nil
}

// errCorrupt marks a published snapshot whose pinned packs fail their check
// (a pack truncated through a hard link it shares with the mirror).
var errCorrupt = errors.New("pinned pack is corrupt")

// checkPinned is the check made every time a process opens a published
// snapshot: each pack is the size that was verified in full (a pack's name is
// its checksum, remembered with its size once checked) and its trailing
// checksum still matches its index. A pack not yet verified at its current
// size is verified in full now.
func (s *Store) checkPinned(packDir string, packs []string) error {
	if len(packs) == 0 {
		return corruptf("no packs")
	}
	for _, name := range packs {
		if err := s.verifyPack(packDir, name); err != nil {
			return err
		}
		if err := pack.CheckTrailer(filepath.Join(packDir, name)); err != nil {
			return err
		}
	}
	return nil
}

// build creates the snapshot in a temp dir, verifies it and publishes it.
// The build flock makes processes asking for the same commit build it once.
// With replaceCorrupt, a published snapshot that fails checkPinned is moved
// out of the way first (one that passes is kept: another process rebuilt it).
func (s *Store) build(ctx context.Context, repo, commit string, replaceCorrupt bool) error {
	lock, err := locks.Exclusive(ctx, s.buildPath(commit))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if s.Has(commit) {
		if !replaceCorrupt {
			return nil // another process built it while we waited
		}
		if err := s.discardIfCorrupt(commit); err != nil {
			return err
		}
		if s.Has(commit) {
			return nil
		}
	}
	start := time.Now()
	m, err := s.mirrors.Get(ctx, repo)
	if err != nil {
		return err
	}
	target := s.snapDir(commit)
	locks.CleanStale(target)
	tmp, err := locks.TempDir(target)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once published
	packDir := filepath.Join(tmp, "objects", "pack")
	packs, err := m.PinPacks(ctx, packDir)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", commit, err)
	}
	meta, err := s.verify(ctx, packDir, packs, commit)
	if err != nil {
		return fmt.Errorf("snapshot %s of %s failed verification, discarded: %w", commit, repo, err)
	}
	meta.Repo = repo
	meta.Created = time.Now().UTC()
	b, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), b, 0o444); err != nil {
		return fmt.Errorf("snapshot %s: %w", commit, err)
	}
	if err := locks.Publish(tmp, target); err != nil {
		if errors.Is(err, locks.ErrPublishedByOther) {
			return nil
		}
		return err
	}
	s.log.Info("snapshot created", "commit", commit, "repo", repo, "files", meta.Files,
		"trees", meta.Trees, "packs", len(meta.Packs), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// discardIfCorrupt removes the published snapshot of commit if its packs
// fail checkPinned. The caller holds the build lock.
func (s *Store) discardIfCorrupt(commit string) error {
	dir := s.snapDir(commit)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err == nil {
		var meta Meta
		if err = json.Unmarshal(b, &meta); err == nil {
			err = s.checkPinned(filepath.Join(dir, "objects", "pack"), meta.Packs)
		}
	}
	if err == nil {
		return nil
	}
	if !isCorrupt(err) && !errors.Is(err, os.ErrNotExist) {
		var se *json.SyntaxError
		if !errors.As(err, &se) {
			return fmt.Errorf("snapshot %s: %w", commit, err) // unreadable, not known to be bad
		}
	}
	trash, err := os.MkdirTemp(s.dir, ".trash-")
	if err == nil {
		err = os.Rename(dir, filepath.Join(trash, commit))
	}
	if err != nil {
		return fmt.Errorf("snapshot %s is corrupt and cannot be removed: %w", commit, err)
	}
	os.RemoveAll(trash)
	s.log.Warn("corrupt snapshot removed", "commit", commit)
	return nil
}

// corruptError is damage to a snapshot's content (as opposed to an I/O or
// permission problem reading it): the snapshot must never be served.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

// isCorrupt reports damage found here or by internal/pack (a pack or
// index missing, truncated or not matching): both mean never serve it.
func isCorrupt(err error) bool {
	var ce *corruptError
	var pe *pack.CorruptError
	return errors.As(err, &ce) || errors.As(err, &pe)
}

// List returns the metadata of every published snapshot.
func (s *Store) List() ([]Meta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []Meta
	for _, e := range entries {
		if !mirror.IsFullSHA(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var m Meta
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// GC removes every snapshot that no process holds a lease on and that keep
// does not name (commits of workspaces, which lease their snapshot even
// while no daemon runs), then trims the blob store to its bound
// (SetBlobLimit; TrimBlobs). It returns the removed commits.
func (s *Store) GC(ctx context.Context, keep map[string]bool) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		if strings.Contains(name, locks.TempMarker) {
			// Builds run under the build lock: skip a commit being built.
			commit := strings.SplitN(name, locks.TempMarker, 2)[0]
			if mirror.IsFullSHA(commit) {
				if lock, err := locks.TryExclusive(s.buildPath(commit)); err == nil {
					locks.CleanStale(filepath.Join(s.dir, commit))
					lock.Unlock()
				}
			}
			continue
		}
		if !mirror.IsFullSHA(name) || keep[name] || s.held(name) {
			continue
		}
		lease, err := locks.TryExclusive(s.leasePath(name))
		if errors.Is(err, locks.ErrWouldBlock) {
			continue // in use
		}
		if err != nil {
			return removed, err
		}
		trash, err := os.MkdirTemp(s.dir, ".trash-")
		if err == nil {
			err = os.Rename(s.snapDir(name), filepath.Join(trash, name))
		}
		lease.Unlock()
		if err != nil {
			return removed, fmt.Errorf("gc snapshot %s: %w", name, err)
		}
		os.RemoveAll(trash)
		removed = append(removed, name)
		s.log.Info("snapshot removed", "commit", name)
	}
	// Leftovers of an interrupted gc.
	if trashes, _ := filepath.Glob(filepath.Join(s.dir, ".trash-*")); trashes != nil {
		for _, t := range trashes {
			os.RemoveAll(t)
		}
	}
	if _, err := s.TrimBlobs(ctx, s.BlobLimit()); err != nil {
		return removed, err
	}
	return removed, nil
}
