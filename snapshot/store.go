// Package snapshot keeps immutable per-commit snapshots under
// ROOT/snapshots: hard links to the mirror's packs (pinned so that no mirror
// gc can take objects away), verified before they are published by one
// rename, leased while in use, and read in-process through go-git with
// caches bounded in bytes. fs and materialize read trees and blobs only
// through this package, and no tree reaches them unchecked: every tree is
// decoded against the rules of names.go (no ".", "..", ".git" or aliases,
// "/", NUL, duplicates, mis-sorted or oversized trees), and a build that
// meets a bad tree, or one nested deeper than MaxDepth, publishes nothing.
package snapshot

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/sync/singleflight"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// Options bound the store's caches and what one tree may hold.
type Options struct {
	TreeCacheBytes int64 // decoded trees; default 64 MiB
	BlobCacheBytes int64 // small blob contents; default 256 MiB
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
	dir     string // ROOT/snapshots
	blobDir string // ROOT/blobs: content-addressed inflated large blobs
	lockDir string // ROOT/locks
	mirrors *mirror.Set
	log     *slog.Logger
	opts    Options

	building singleflight.Group // one build per commit in this process
	inflate  singleflight.Group // one on-disk inflation per blob

	mu   sync.Mutex           // guards open and each Snapshot's refs
	open map[string]*Snapshot // snapshots with live references, by commit

	// Content-addressed, so shared by every snapshot.
	trees *ristretto.Cache[string, []Entry]
	sizes *ristretto.Cache[string, int64]
	blobs *ristretto.Cache[string, []byte]
}

// NewStore opens the snapshot store under root.
func NewStore(root string, mirrors *mirror.Set, log *slog.Logger, opts Options) (*Store, error) {
	if opts.TreeCacheBytes == 0 {
		opts.TreeCacheBytes = 64 << 20
	}
	if opts.BlobCacheBytes == 0 {
		opts.BlobCacheBytes = 256 << 20
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
		blobDir: filepath.Join(root, "blobs"),
		lockDir: filepath.Join(root, "locks"),
		mirrors: mirrors,
		log:     log,
		opts:    opts,
		open:    make(map[string]*Snapshot),
	}
	for _, d := range []string{s.dir, s.blobDir, s.lockDir, s.verifiedDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("snapshots: %w", err)
		}
	}
	var err error
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
	return snap, nil
}

func (s *Store) releaseSnap(snap *Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap.refs--
	if snap.refs == 0 {
		delete(s.open, snap.meta.Commit)
		snap.packs.close()
		snap.contents.close()
	}
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
	packs, err := openPackSet(packDir, meta.Packs)
	if err != nil {
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
		if err := packTrailerMatchesIndex(filepath.Join(packDir, name)); err != nil {
			return err
		}
	}
	return nil
}

// packTrailerMatchesIndex compares the last 20 bytes of a pack with the
// pack checksum its index records.
func packTrailerMatchesIndex(base string) error {
	name := filepath.Base(base)
	read := func(path string, fromEnd int64) ([]byte, error) {
		f, err := os.Open(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, corruptf("%s is missing", filepath.Base(path))
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if st.Size() < fromEnd+12 {
			return nil, corruptf("%s: truncated", filepath.Base(path))
		}
		b := make([]byte, 20)
		_, err = f.ReadAt(b, st.Size()-fromEnd)
		return b, err
	}
	want, err := read(base+".idx", 40)
	if err != nil {
		return err
	}
	got, err := read(base+".pack", 20)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return corruptf("%s: truncated or corrupt (checksum does not match its index)", name)
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

// verify checks, without inflating any blob, that the commit and every tree
// it reaches parse and pass the tree rules (readTree: names, order,
// duplicates, entries per tree), that no path is nested deeper than
// MaxDepth, that every blob it names is in the pinned packs, and that each
// pack's trailing checksum is right (once per pack, ever). A refusal names
// the entry's path (its first path, for a tree reached by several).
func (s *Store) verify(ctx context.Context, packDir string, packs []string, commit string) (Meta, error) {
	sort.Strings(packs)
	for _, p := range packs {
		if err := s.verifyPack(packDir, p); err != nil {
			return Meta{}, err
		}
	}
	ps, err := openPackSet(packDir, packs)
	if err != nil {
		return Meta{}, err
	}
	defer ps.close()
	obj, err := ps.object(plumbing.NewHash(commit))
	if err != nil {
		return Meta{}, fmt.Errorf("commit: %w", err)
	}
	if obj.Type() != plumbing.CommitObject {
		return Meta{}, fmt.Errorf("%s is a %s, not a commit", commit, obj.Type())
	}
	var c object.Commit
	if err := c.Decode(obj); err != nil {
		return Meta{}, fmt.Errorf("commit: %w", err)
	}
	meta := Meta{Commit: commit, Tree: c.TreeHash.String(), CommitTime: c.Committer.When.UTC(), Packs: packs}
	w := &verifyWalk{ctx: ctx, snap: &Snapshot{packs: ps, store: s}, meta: &meta, trees: make(map[ID]*treeDepth)}
	if _, err := w.walk(c.TreeHash, "", 1); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// verifyWalk visits each distinct tree of a commit once. Depth is checked
// without expanding repeated subtrees: each tree remembers how many levels
// of entries it holds, so a tree first met shallow and met again deep is
// measured again at no cost.
type verifyWalk struct {
	ctx   context.Context
	snap  *Snapshot
	meta  *Meta
	trees map[ID]*treeDepth
}

// treeDepth is what the walk keeps of a finished tree: its levels of
// entries (0 if empty, 1 with no subdirectory) and the first entry on a
// deepest chain (name, and the subtree it leads to unless it is the last).
type treeDepth struct {
	levels int
	name   string
	child  ID
	done   bool
}

// walk verifies tree id found at dir (its path, "" for the root), whose
// entries are depth levels deep (the root's are 1), and returns its levels.
func (w *verifyWalk) walk(id ID, dir string, depth int) (int, error) {
	if t := w.trees[id]; t != nil {
		if !t.done {
			// Object ids make a cycle impossible; refuse rather than loop.
			return 0, &RefusedError{Path: dir, Rule: "tree contains itself"}
		}
		if depth-1+t.levels > MaxDepth {
			return 0, &RefusedError{Path: w.deepest(id, dir, depth), Rule: fmt.Sprintf(RuleDepth, MaxDepth)}
		}
		return t.levels, nil
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	entries, err := w.snap.readTree(id)
	if re := (*RefusedError)(nil); errors.As(err, &re) {
		return 0, re.Under(dir)
	}
	if err != nil && dir != "" {
		return 0, fmt.Errorf("path %q: %w", dir, err)
	}
	if err != nil {
		return 0, err
	}
	if len(entries) > 0 && depth > MaxDepth {
		return 0, &RefusedError{Path: joinPath(dir, entries[0].Name), Rule: fmt.Sprintf(RuleDepth, MaxDepth)}
	}
	t := &treeDepth{}
	w.trees[id] = t
	w.meta.Trees++
	if len(entries) > 0 {
		t.levels, t.name = 1, entries[0].Name
	}
	for _, e := range entries {
		switch e.Kind {
		case Dir:
			levels, err := w.walk(e.ID, joinPath(dir, e.Name), depth+1)
			if err != nil {
				return 0, err
			}
			if levels+1 > t.levels {
				t.levels, t.name, t.child = levels+1, e.Name, e.ID
			}
		case Gitlink:
		default:
			w.meta.Files++
			if !w.snap.packs.has(e.ID) {
				return 0, fmt.Errorf("blob %s (%s) missing from pinned packs", e.ID, joinPath(dir, e.Name))
			}
		}
	}
	t.done = true
	return t.levels, nil
}

// deepest is the path of the first entry deeper than MaxDepth on the
// deepest chain of finished tree id, met at dir with entries depth deep.
func (w *verifyWalk) deepest(id ID, dir string, depth int) string {
	p := dir
	for t := w.trees[id]; t != nil; t = w.trees[t.child] {
		p = joinPath(p, t.name)
		if depth > MaxDepth || t.child.IsZero() {
			break
		}
		depth++
	}
	return p
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func (s *Store) verifyPack(packDir, name string) error {
	path := filepath.Join(packDir, name+".pack")
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return corruptf("%s.pack is missing", name)
	}
	if err != nil {
		return err
	}
	marker := filepath.Join(s.verifiedDir(), fmt.Sprintf("%s-%d", name, st.Size()))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st.Size() < 32 {
		return corruptf("%s: truncated", name)
	}
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size()-20)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	trailer := make([]byte, 20)
	if _, err := f.ReadAt(trailer, st.Size()-20); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	sum := h.Sum(nil)
	if hex.EncodeToString(sum) != hex.EncodeToString(trailer) {
		return corruptf("%s: checksum mismatch: pack is corrupt", name)
	}
	idx, err := readIndex(filepath.Join(packDir, name+".idx"))
	if err != nil {
		return corruptf("%v", err)
	}
	if hex.EncodeToString(idx.PackfileChecksum[:]) != hex.EncodeToString(sum) {
		return corruptf("%s: index does not belong to this pack", name)
	}
	// Only a cache: failing to remember costs a re-check, nothing more.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		s.log.Debug("cannot remember a verified pack", "pack", name, "err", err)
	}
	return nil
}

// corruptError is damage to a snapshot's content (as opposed to an I/O or
// permission problem reading it): the snapshot must never be served.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return e.msg }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

func isCorrupt(err error) bool {
	var ce *corruptError
	return errors.As(err, &ce)
}

// blobFile returns a read-only descriptor of blob id inflated into the
// shared on-disk cache, inflating it first if needed (once per blob).
func (s *Store) blobFile(snap *Snapshot, id ID, size int64) (*os.File, error) {
	path := filepath.Join(s.blobDir, id.String())
	if f, err := os.Open(path); err == nil {
		return f, nil
	}
	_, err, _ := s.inflate.Do(id.String(), func() (any, error) {
		if _, err := os.Stat(path); err == nil {
			return nil, nil
		}
		r, _, err := snap.packs.stream(id)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		tmp, err := os.CreateTemp(s.blobDir, id.String()+".tmp-*")
		if err != nil {
			return nil, fmt.Errorf("blob cache: %w", err)
		}
		defer os.Remove(tmp.Name())
		n, err := io.Copy(tmp, r)
		if err == nil && n != size {
			err = fmt.Errorf("inflated %d bytes, expected %d", n, size)
		}
		if err == nil {
			err = tmp.Chmod(0o444)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", id, err)
		}
		return nil, os.Rename(tmp.Name(), path)
	})
	if err != nil {
		return nil, err
	}
	return os.Open(path)
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
// while no daemon runs), and empties the on-disk blob cache. It returns the
// removed commits.
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
	// Inflated blobs are a cache: open descriptors keep working after unlink.
	blobs, _ := os.ReadDir(s.blobDir)
	for _, b := range blobs {
		os.Remove(filepath.Join(s.blobDir, b.Name()))
	}
	return removed, nil
}
