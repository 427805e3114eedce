package snapshot

import "sync"

// idSet is what the store remembers about object ids for this process:
// the trees a fill found whole (fill.go), the trees with no
// .gitattributes (worktree.go). An id's content never changes, so an
// answer stays true while the set's tag does (the blob store's
// generation, for whole trees). Bounded: past max ids the set starts
// again empty.
type idSet struct {
	// mu guards ids and tag; a leaf (the package's lock table).
	mu  sync.Mutex
	ids map[ID]struct{}
	tag string
	max int
}

// has reports whether id was added under tag.
func (s *idSet) has(tag string, id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tag != tag {
		return false
	}
	_, ok := s.ids[id]
	return ok
}

// add records ids under tag, forgetting what was added under another.
func (s *idSet) add(tag string, ids []ID) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil || s.tag != tag || len(s.ids)+len(ids) > s.max {
		s.ids, s.tag = make(map[ID]struct{}, len(ids)), tag
	}
	for _, id := range ids {
		s.ids[id] = struct{}{}
	}
}
