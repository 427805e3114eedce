package pack

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

const (
	// BaseCacheBytes bounds the objects kept as delta bases, by every Set
	// of the process together (sharedCache), and so a checkout's memory
	// beyond its buffers. One cache per Set cost a daemon serving ten
	// commits up to ten times this.
	BaseCacheBytes = 32 << 20
	// BaseItemMax is the largest object kept; larger ones are rebuilt.
	BaseItemMax = 4 << 20
	// MaxChain bounds a delta chain: deeper ones are corrupt (or hostile).
	MaxChain = 10000
)

// sharedCache is the delta-base cache of every Set: snapshots of one
// repository pin hard links to the same packs, whose entries it keys by
// pack name.
var sharedCache = newBaseCache(BaseCacheBytes, BaseItemMax)

// Set is an ordered list of packs read as one object store, sharing the
// process's delta-base cache. An object in several packs is read from the
// first.
type Set struct {
	packs []*Pack
	cache *baseCache
}

// OpenSet opens the packs dir/<name>.pack of names, with their indexes.
func OpenSet(dir string, names []string) (*Set, error) {
	s := &Set{cache: sharedCache}
	for _, name := range names {
		p, err := Open(filepath.Join(dir, name))
		if err != nil {
			s.Close()
			return nil, err
		}
		s.packs = append(s.packs, p)
	}
	return s, nil
}

// Close closes every pack of the set.
func (s *Set) Close() error {
	var first error
	for _, p := range s.packs {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// find returns the pack holding id and its offset there.
func (s *Set) find(id plumbing.Hash) (*Pack, int64, bool) {
	for _, p := range s.packs {
		if off, ok := p.Find(id); ok {
			return p, off, true
		}
	}
	return nil, 0, false
}

func notFound(id plumbing.Hash) error {
	return fmt.Errorf("object %s: %w", id, plumbing.ErrObjectNotFound)
}

// Has reports whether some pack of the set holds id.
func (s *Set) Has(id plumbing.Hash) bool {
	_, _, ok := s.find(id)
	return ok
}

// Size is the size of object id, read from its entry's header (for a
// delta, from the first bytes of the delta): nothing is inflated whole.
func (s *Set) Size(id plumbing.Hash) (int64, error) {
	p, off, ok := s.find(id)
	if !ok {
		return 0, notFound(id)
	}
	if _, data, ok := s.cache.get(p, off); ok {
		return int64(len(data)), nil
	}
	h, err := p.header(off)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", id, err)
	}
	if !h.typ.isDelta() {
		return h.size, nil
	}
	n, err := p.deltaTargetSize(h)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", id, err)
	}
	return n, nil
}

// Read returns object id whole, with its type, for objects needed whole
// (a commit to decode); whatever its size, it is inflated into memory.
// What it inflates is kept in the base cache (up to BaseItemMax), since
// the entries after it are likely deltas built on it. The slice is shared
// and must not be modified.
func (s *Set) Read(id plumbing.Hash) (Type, []byte, error) {
	p, off, ok := s.find(id)
	if !ok {
		return 0, nil, notFound(id)
	}
	if typ, data, ok := s.cache.get(p, off); ok {
		return typ, data, nil
	}
	h, err := p.header(off)
	if err != nil {
		return 0, nil, fmt.Errorf("object %s: %w", id, err)
	}
	if h.typ.isDelta() {
		typ, data, err := s.resolve(p, off, h)
		if err != nil {
			return 0, nil, fmt.Errorf("object %s: %w", id, err)
		}
		return typ, data, nil
	}
	data, err := p.inflateAll(h)
	if err != nil {
		return 0, nil, fmt.Errorf("object %s: %w", id, err)
	}
	s.cache.put(p, off, h.typ, data)
	return h.typ, data, nil
}

// ReadBlob returns blob id whole, inflated into memory: a slice of the
// base cache when it is there or rebuilt from deltas (no copy; shared, it
// must not be modified), else a new one, which a plain blob's entry leaves
// out of the cache.
func (s *Set) ReadBlob(id plumbing.Hash) ([]byte, error) {
	p, off, ok := s.find(id)
	if !ok {
		return nil, notFound(id)
	}
	typ, data, ok := s.cache.get(p, off)
	if !ok {
		h, err := p.header(off)
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", id, err)
		}
		switch {
		case h.typ.isDelta():
			typ, data, err = s.resolve(p, off, h)
		case h.typ != Blob:
			typ = h.typ
		default:
			typ = Blob
			data, err = p.inflateAll(h)
		}
		if err != nil {
			return nil, fmt.Errorf("object %s: %w", id, err)
		}
	}
	if typ != Blob {
		return nil, fmt.Errorf("object %s is a %s, not a %s", id, typ, Blob)
	}
	return data, nil
}

// Open returns a reader of object id's content, its type and size. A
// plain blob, or any plain object over BaseItemMax, is inflated as it is
// read, so that one huge object costs a buffer, not its size; other plain
// objects (trees, commits) are inflated whole and kept in the base cache,
// as the entries after them are likely deltas built on them; a deltified
// object is rebuilt in memory (each step of its chain kept in the cache).
func (s *Set) Open(id plumbing.Hash) (Type, io.ReadCloser, int64, error) {
	return s.open(id, 0, false)
}

// OpenBlob is Open for a blob: any other type is an error, found before
// anything is inflated when the entry is not a delta.
func (s *Set) OpenBlob(id plumbing.Hash) (io.ReadCloser, int64, error) {
	_, rc, n, err := s.open(id, Blob, false)
	return rc, n, err
}

// OpenBlobCaching is OpenBlob for one pass over many blobs in pack order
// (SortByPackOrder), as inflating a snapshot's contents makes: a plain
// blob up to BaseItemMax is inflated whole and kept in the base cache,
// since the deltas that follow it in the pack are built on it, and an
// object in the cache is never inflated again. In tree order the same
// pass inflated about twice the bytes it wrote.
func (s *Set) OpenBlobCaching(id plumbing.Hash) (io.ReadCloser, int64, error) {
	_, rc, n, err := s.open(id, Blob, true)
	return rc, n, err
}

// open is Open, refusing any type but want unless it is 0, and keeping
// plain blobs in the cache when caching.
func (s *Set) open(id plumbing.Hash, want Type, caching bool) (Type, io.ReadCloser, int64, error) {
	p, off, ok := s.find(id)
	if !ok {
		return 0, nil, 0, notFound(id)
	}
	whole := func(typ Type, data []byte) (Type, io.ReadCloser, int64, error) {
		if want != 0 && typ != want {
			return 0, nil, 0, fmt.Errorf("object %s is a %s, not a %s", id, typ, want)
		}
		return typ, io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
	}
	if typ, data, ok := s.cache.get(p, off); ok {
		return whole(typ, data)
	}
	h, err := p.header(off)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("object %s: %w", id, err)
	}
	switch {
	case h.typ.isDelta():
		typ, data, err := s.resolve(p, off, h)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("object %s: %w", id, err)
		}
		return whole(typ, data)
	case want != 0 && h.typ != want:
		return 0, nil, 0, fmt.Errorf("object %s is a %s, not a %s", id, h.typ, want)
	case (h.typ != Blob || caching) && h.size <= s.cache.itemMax:
		data, err := p.inflateAll(h)
		if err != nil {
			return 0, nil, 0, fmt.Errorf("object %s: %w", id, err)
		}
		s.cache.put(p, off, h.typ, data)
		return whole(h.typ, data)
	}
	in, err := p.inflate(h)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("object %s: %w", id, err)
	}
	return h.typ, in, h.size, nil
}

// link is one delta of a chain being rebuilt.
type link struct {
	p   *Pack
	h   header
	off int64
}

// resolve rebuilds the deltified object at (p, off) with header h: walk
// to the nearest cached or plain base, then apply the deltas back up,
// caching each step.
func (s *Set) resolve(p *Pack, off int64, h header) (Type, []byte, error) {
	var chain []link
	var base []byte
	var typ Type
	for {
		if t, data, ok := s.cache.get(p, off); ok {
			typ, base = t, data
			break
		}
		if !h.typ.isDelta() {
			data, err := p.inflateAll(h)
			if err != nil {
				return 0, nil, err
			}
			typ, base = h.typ, data
			s.cache.put(p, off, typ, data)
			break
		}
		if len(chain) >= MaxChain {
			return 0, nil, fmt.Errorf("pack %s: delta chain longer than %d", p.name, MaxChain)
		}
		chain = append(chain, link{p: p, h: h, off: off})
		if h.typ == OfsDelta {
			off = h.baseOff
		} else {
			bp, boff, ok := s.find(h.baseRef)
			if !ok {
				return 0, nil, fmt.Errorf("delta base %s: %w", h.baseRef, plumbing.ErrObjectNotFound)
			}
			p, off = bp, boff
		}
		var err error
		if h, err = p.header(off); err != nil {
			return 0, nil, err
		}
	}
	for i := len(chain) - 1; i >= 0; i-- {
		l := chain[i]
		delta, err := l.p.inflateAll(l.h)
		if err != nil {
			return 0, nil, err
		}
		if base, err = packfile.PatchDelta(base, delta); err != nil {
			return 0, nil, fmt.Errorf("pack %s at %d: %w", l.p.name, l.off, err)
		}
		s.cache.put(l.p, l.off, typ, base)
	}
	return typ, base, nil
}

// SortByPackOrder orders ids as their entries lie in the packs, where a
// delta's base comes before it. Ids not found keep their order at the
// end, to fail when read.
func (s *Set) SortByPackOrder(ids []plumbing.Hash) {
	type pos struct {
		pack int
		off  int64
	}
	index := make(map[*Pack]int, len(s.packs))
	for i, p := range s.packs {
		index[p] = i
	}
	where := make(map[plumbing.Hash]pos, len(ids))
	for _, id := range ids {
		if p, off, ok := s.find(id); ok {
			where[id] = pos{index[p], off}
		} else {
			where[id] = pos{len(s.packs), 0}
		}
	}
	sort.SliceStable(ids, func(i, j int) bool {
		a, b := where[ids[i]], where[ids[j]]
		if a.pack != b.pack {
			return a.pack < b.pack
		}
		return a.off < b.off
	})
}
