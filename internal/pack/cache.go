package pack

import (
	"container/list"
	"sync"
)

// baseCache is an LRU of inflated or rebuilt objects, bounded in bytes,
// keyed by where their entry is: the pack's name (its checksum, so that
// the hard-linked copies of one pack in every snapshot share entries) and
// the entry's offset. The slices it returns are shared and never
// modified.
type baseCache struct {
	// mu guards lru, items and used, for one get or put at a time; it is
	// a leaf lock (nothing else is taken while it is held).
	mu      sync.Mutex
	max     int64
	itemMax int64 // larger objects are rebuilt when needed, not kept
	used    int64
	lru     *list.List // of *baseItem, most recent first
	items   map[baseKey]*list.Element
}

type baseKey struct {
	pack string // Pack.name: "pack-<checksum>"
	off  int64
}

type baseItem struct {
	key  baseKey
	typ  Type
	data []byte
}

func newBaseCache(max, itemMax int64) *baseCache {
	return &baseCache{max: max, itemMax: itemMax, lru: list.New(), items: make(map[baseKey]*list.Element)}
}

func (c *baseCache) get(p *Pack, off int64) (Type, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[baseKey{p.name, off}]
	if !ok {
		return 0, nil, false
	}
	c.lru.MoveToFront(e)
	it := e.Value.(*baseItem)
	return it.typ, it.data, true
}

func (c *baseCache) put(p *Pack, off int64, typ Type, data []byte) {
	if int64(len(data)) > c.itemMax {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := baseKey{p.name, off}
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.lru.PushFront(&baseItem{key: k, typ: typ, data: data})
	c.used += int64(len(data))
	for c.used > c.max {
		e := c.lru.Back()
		it := e.Value.(*baseItem)
		c.lru.Remove(e)
		delete(c.items, it.key)
		c.used -= int64(len(it.data))
	}
}
