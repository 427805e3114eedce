package pack

import (
	"os"
	"path/filepath"
	"testing"
)

// TestIndexShared: a pack opened again, or through a hard link, shares the
// decoded index; a copy (another file) and an index rewritten in place are
// decoded afresh; the cache keeps no more than its bound.
func TestIndexShared(t *testing.T) {
	r := newTestRepo(t)
	dir := t.TempDir()
	base := r.pack(t, dir)
	open := func(b string) *Pack {
		t.Helper()
		p, err := Open(b)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
	first := open(base)
	if again := open(base); again.idx != first.idx {
		t.Error("the same pack opened twice decoded its index twice")
	}
	linked := filepath.Join(t.TempDir(), filepath.Base(base))
	for _, ext := range []string{".pack", ".idx"} {
		if err := os.Link(base+ext, linked+ext); err != nil {
			t.Fatal(err)
		}
	}
	if l := open(linked); l.idx != first.idx {
		t.Error("a hard link of the pack decoded its index again")
	}
	copied := filepath.Join(t.TempDir(), filepath.Base(base))
	copyFile(t, base+".pack", copied+".pack")
	copyFile(t, base+".idx", copied+".idx")
	c := open(copied)
	if c.idx == first.idx {
		t.Error("a copy of the index (another file) was taken from the cache")
	}
	if _, ok := c.Find(firstID(t, first)); !ok {
		t.Error("the copy's index does not find what the original does")
	}

	small := newIndexCache(100)
	a, b := indexKey{ino: 1, size: 60}, indexKey{ino: 2, size: 60}
	small.put(a, first.idx)
	small.put(b, c.idx)
	if _, ok := small.get(a); ok {
		t.Error("the cache kept more than its bound")
	}
	if idx, ok := small.get(b); !ok || idx != c.idx {
		t.Error("the cache dropped its most recent index")
	}
}

// firstID is some object id of p's index.
func firstID(t *testing.T, p *Pack) (id [20]byte) {
	t.Helper()
	for _, names := range p.idx.Names {
		if len(names) >= idSize {
			copy(id[:], names[:idSize])
			return id
		}
	}
	t.Fatal("empty index")
	return id
}
