package pack

import (
	"container/list"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// indexCache keeps decoded pack indexes for the process, so that opening
// a snapshot whose packs another snapshot opened (every snapshot of a
// repository pins hard links to the same packs) decodes nothing: ws
// update to a commit whose snapshot was closed spent ~21 ms of its ~50 in
// idxfile.Decode of git.git's index. A decoded index is shared, read-only,
// by every Pack that uses it; the cache bounds only what it keeps for
// later (in idx file bytes, least recently used first).
//
// The key is the idx file's identity and the pack's size: a hard link is
// the same file, while an index rewritten or damaged in place (another
// inode, size or time) is decoded afresh, and one checked against a pack
// of one size is never trusted for another.
type indexCache struct {
	// mu guards used, lru and items; a leaf lock, held for one get or put.
	mu    sync.Mutex
	max   int64
	used  int64
	lru   *list.List // of *indexItem, most recent first
	items map[indexKey]*list.Element
}

type indexKey struct {
	dev, ino  uint64
	size      int64 // the idx file's
	mtimeNsec int64
	packSize  int64
}

type indexItem struct {
	key indexKey
	idx *idxfile.MemoryIndex
}

// sharedIndexes is the process's index cache: 256 MiB of idx files (a
// pack of a million objects has an index of about 30 MB).
var sharedIndexes = newIndexCache(256 << 20)

func newIndexCache(max int64) *indexCache {
	return &indexCache{max: max, lru: list.New(), items: make(map[indexKey]*list.Element)}
}

func (c *indexCache) get(k indexKey) (*idxfile.MemoryIndex, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*indexItem).idx, true
}

func (c *indexCache) put(k indexKey, idx *idxfile.MemoryIndex) {
	if k.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[k]; ok {
		return
	}
	c.items[k] = c.lru.PushFront(&indexItem{key: k, idx: idx})
	c.used += k.size
	for c.used > c.max {
		last := c.lru.Back()
		it := last.Value.(*indexItem)
		c.lru.Remove(last)
		delete(c.items, it.key)
		c.used -= it.key.size
	}
}
