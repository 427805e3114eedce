package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/gitfs/gitfs/internal/blobstore"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// DefaultBlobLimit bounds the blob store unless SetBlobLimit says
// otherwise (serve and gc --blob-cache-size).
const DefaultBlobLimit = 20 << 30

// SetBlobLimit sets the bound in bytes that trims keep the blob store to.
func (s *Store) SetBlobLimit(n int64) { s.blobLimit.Store(n) }

// BlobLimit is the blob store's bound.
func (s *Store) BlobLimit() int64 { return s.blobLimit.Load() }

// BlobUsage is what the blob store holds.
func (s *Store) BlobUsage() (blobstore.Usage, error) { return s.stored.Usage() }

// TrimBlobs removes least recently used blobs until the blob store holds
// at most limit bytes, keeping every blob of a snapshot in use: leased by
// this process (workspaces, browse paths, a fill) or by another one (a
// daemon, a running checkout), as the lease flocks tell. Readers are never
// broken: a descriptor open on a removed blob keeps reading it.
func (s *Store) TrimBlobs(ctx context.Context, limit int64) (blobstore.TrimResult, error) {
	return s.trimBlobs(ctx, limit, false)
}

// trimBlobs is TrimBlobs; maybe scans the blob store only if it may have
// outgrown limit (blobstore.MaybeTrim: a fill's trim).
func (s *Store) trimBlobs(ctx context.Context, limit int64, maybe bool) (blobstore.TrimResult, error) {
	var once sync.Once
	var keep map[ID]struct{}
	var keepErr error
	inUse := func(id ID) bool {
		once.Do(func() { keep, keepErr = s.blobsInUse(ctx) })
		if keepErr != nil {
			return true // unsure: keep everything
		}
		_, ok := keep[id]
		return ok
	}
	var r blobstore.TrimResult
	var err error
	if maybe {
		r, _, err = s.stored.MaybeTrim(limit, inUse)
	} else {
		r, err = s.stored.Trim(limit, inUse)
	}
	if err == nil {
		err = keepErr
	}
	if err != nil {
		return r, fmt.Errorf("blob store: %w", err)
	}
	if r.Removed > 0 {
		s.log.Info("blob store trimmed", "removed", r.Removed, "freed", r.Freed, "left", r.Left.Bytes, "limit", limit)
	}
	return r, nil
}

// blobsInUse collects the blobs of every snapshot some process leases.
func (s *Store) blobsInUse(ctx context.Context) (map[ID]struct{}, error) {
	keep := map[ID]struct{}{}
	add := func(snap *Snapshot) error {
		ids, err := snap.blobIDs(ctx)
		for _, id := range ids {
			keep[id] = struct{}{}
		}
		return err
	}
	s.mu.Lock()
	mine := make(map[string]*Snapshot, len(s.open))
	for c, snap := range s.open {
		snap.refs++ // held while its trees are read, outside s.mu
		mine[c] = snap
	}
	s.mu.Unlock()
	var err error
	for _, snap := range mine {
		if err == nil {
			err = add(snap)
		}
		s.releaseSnap(snap)
	}
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		c := e.Name()
		if !mirror.IsFullSHA(c) || mine[c] != nil {
			continue
		}
		lease, err := locks.TryExclusive(s.leasePath(c))
		if err == nil {
			lease.Unlock() // nobody uses it
			continue
		}
		if !errors.Is(err, locks.ErrWouldBlock) {
			return nil, err
		}
		snap, err := s.openSnap(c)
		if err != nil {
			continue // being removed, or unreadable: nothing to read its trees from
		}
		err = add(snap)
		snap.packs.Close()
		if err != nil {
			return nil, err
		}
	}
	return keep, nil
}
