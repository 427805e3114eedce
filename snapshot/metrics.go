package snapshot

import (
	"os"
	"sync/atomic"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/gitfs/gitfs/mirror"
)

// What the store counts for the daemon's metrics. Counting is a few atomic
// adds on paths that already do a map lookup or I/O; reading the numbers
// takes Store.mu only to count open snapshots.

// BlobSource is where Open found a blob's bytes (see blob.go).
type BlobSource int

const (
	FromMemory   BlobSource = iota // the memory cache
	FromContents                   // the per-commit contents file: gone, always 0 (compat.go)
	FromBlobFile                   // the blob store ROOT/blobs (fill.go)
	FromPacks                      // inflated from the pinned packs now
	numSources
)

func (s BlobSource) String() string {
	return [...]string{"memory", "contents", "blobfile", "packs"}[s]
}

// blobCounters counts Open by source.
type blobCounters struct {
	opens, bytes [numSources]atomic.Int64
}

func (c *blobCounters) add(src BlobSource, size int64) {
	c.opens[src].Add(1)
	c.bytes[src].Add(size)
}

// CacheMetrics are one cache's counters since the store opened.
type CacheMetrics struct {
	Hits, Misses, Evictions uint64
}

// Metrics is a snapshot of the store's counters.
type Metrics struct {
	BlobOpens, BlobBytes [numSources]int64 // by BlobSource
	Trees, Sizes, Blobs  CacheMetrics
	Published            int // snapshots on disk
	Open                 int // snapshots this process has open
	Leases               int // leases this process holds (Get not yet released)
}

// Metrics returns the store's counters.
func (s *Store) Metrics() Metrics {
	var m Metrics
	for i := range m.BlobOpens {
		m.BlobOpens[i] = s.counts.opens[i].Load()
		m.BlobBytes[i] = s.counts.bytes[i].Load()
	}
	m.Trees, m.Sizes, m.Blobs = cacheMetrics(s.trees), cacheMetrics(s.sizes), cacheMetrics(s.blobs)
	if entries, err := os.ReadDir(s.dir); err == nil {
		for _, e := range entries {
			if mirror.IsFullSHA(e.Name()) {
				m.Published++
			}
		}
	}
	s.mu.Lock()
	m.Open = len(s.open)
	for _, snap := range s.open {
		m.Leases += snap.refs
	}
	s.mu.Unlock()
	return m
}

func cacheMetrics[V any](c *ristretto.Cache[string, V]) CacheMetrics {
	if c == nil || c.Metrics == nil {
		return CacheMetrics{}
	}
	mt := c.Metrics
	return CacheMetrics{Hits: mt.Hits(), Misses: mt.Misses(), Evictions: mt.KeysEvicted()}
}
