package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// packKinds are the packs the reader must read alike: no deltas, deltas
// against offsets (what git repack writes), deltas against ids (what
// pack-objects writes without --delta-base-offset, and thin packs
// fixed up), and long chains.
var packKinds = []struct {
	name   string
	args   []string
	deltas bool
	want   Type // a delta entry type the pack must hold, if deltas
}{
	{"no deltas", []string{"--window=0"}, false, 0},
	{"ofs deltas", []string{"--delta-base-offset", "--window=50", "--depth=50"}, true, OfsDelta},
	{"ref deltas", []string{"--window=50", "--depth=50"}, true, RefDelta},
	{"deep chains", []string{"--delta-base-offset", "--window=250", "--depth=4095"}, true, OfsDelta},
}

// entryTypes counts the pack's entries by how they are stored.
func entryTypes(t *testing.T, p *Pack) map[Type]int {
	t.Helper()
	out := map[Type]int{}
	for k := range p.idx.Names {
		for i := 0; i < len(p.idx.Names[k])/idSize; i++ {
			off, ok := p.offset(k, i)
			if !ok {
				t.Fatalf("offset %d/%d unreadable", k, i)
			}
			h, err := p.header(off)
			if err != nil {
				t.Fatal(err)
			}
			out[h.typ]++
		}
	}
	return out
}

// TestSetReadsWhatGitWrote: every object of every kind of pack reads back
// as `git cat-file` gives it, through Size, Read, Open, OpenBlob,
// OpenBlobCaching and ReadBlob, and Find agrees with go-git's index lookup.
func TestSetReadsWhatGitWrote(t *testing.T) {
	r := newTestRepo(t)
	for _, pk := range packKinds {
		t.Run(pk.name, func(t *testing.T) {
			base := r.pack(t, t.TempDir(), pk.args...)
			if n := deltas(t, base); (n > 0) != pk.deltas {
				t.Fatalf("pack has %d deltas, want deltas=%v", n, pk.deltas)
			}
			s, err := OpenSet(filepath.Dir(base), []string{filepath.Base(base)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if pk.want != 0 && entryTypes(t, s.packs[0])[pk.want] == 0 {
				t.Fatalf("pack holds no %s entry", pk.want)
			}
			ids := make([]plumbing.Hash, 0, len(r.objects))
			for id := range r.objects {
				ids = append(ids, id)
			}
			// Caching reads assume pack order; plain ones any order.
			s.SortByPackOrder(ids)
			for _, id := range ids {
				want := r.objects[id]
				off, ok := s.packs[0].Find(id)
				goOff, err := s.packs[0].idx.FindOffset(id)
				if !ok || err != nil || off != goOff {
					t.Fatalf("%s: Find = %d, %v; go-git says %d, %v", id, off, ok, goOff, err)
				}
				if !s.Has(id) {
					t.Fatalf("%s: Has = false", id)
				}
				n, err := s.Size(id)
				if err != nil || n != int64(len(want.data)) {
					t.Fatalf("%s: Size = %d, %v; want %d", id, n, err, len(want.data))
				}
				if want.typ != "blob" {
					typ, data, err := s.Read(id)
					if err != nil || typ.String() != want.typ || !bytes.Equal(data, want.data) {
						t.Fatalf("%s: Read = %v, %d bytes, %v; want a %s of %d bytes as git has it", id, typ, len(data), err, want.typ, len(want.data))
					}
					if _, _, err := s.OpenBlob(id); err == nil {
						t.Fatalf("%s: OpenBlob of a %s succeeded", id, want.typ)
					}
					if _, err := s.ReadBlob(id); err == nil {
						t.Fatalf("%s: ReadBlob of a %s succeeded", id, want.typ)
					}
				} else if data, err := s.ReadBlob(id); err != nil || !bytes.Equal(data, want.data) {
					t.Fatalf("%s: ReadBlob = %d bytes, %v; want the %d git has", id, len(data), err, len(want.data))
				}
				open := func(id plumbing.Hash) (io.ReadCloser, int64, error) {
					typ, rc, n, err := s.Open(id)
					if err == nil && typ.String() != want.typ {
						rc.Close()
						return nil, 0, fmt.Errorf("Open: type %s, want %s", typ, want.typ)
					}
					return rc, n, err
				}
				opens := []func(plumbing.Hash) (io.ReadCloser, int64, error){open}
				if want.typ == "blob" {
					opens = append(opens, s.OpenBlobCaching, s.OpenBlob)
				}
				for _, open := range opens {
					rc, size, err := open(id)
					if err != nil {
						t.Fatalf("%s: %v", id, err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || size != int64(len(got)) || !bytes.Equal(got, want.data) {
						t.Fatalf("%s: read %d bytes (size %d), %v; want the %d git has", id, len(got), size, err, len(want.data))
					}
				}
			}
			missing := plumbing.NewHash("0123456789012345678901234567890123456789")
			if _, ok := s.packs[0].Find(missing); ok || s.Has(missing) {
				t.Fatal("found an object the pack does not hold")
			}
			if _, err := s.Size(missing); !errors.Is(err, plumbing.ErrObjectNotFound) {
				t.Errorf("Size of a missing object: %v", err)
			}
			if _, _, err := s.Read(missing); !errors.Is(err, plumbing.ErrObjectNotFound) {
				t.Errorf("Read of a missing object: %v", err)
			}
			if _, _, err := s.OpenBlob(missing); !errors.Is(err, plumbing.ErrObjectNotFound) {
				t.Errorf("OpenBlob of a missing object: %v", err)
			}
			if _, err := s.ReadBlob(missing); !errors.Is(err, plumbing.ErrObjectNotFound) {
				t.Errorf("ReadBlob of a missing object: %v", err)
			}
		})
	}
}

// TestSetConcurrentReads: readers sharing one set and a cache small
// enough to evict all the time read every blob right (run with -race).
func TestSetConcurrentReads(t *testing.T) {
	r := newTestRepo(t)
	base := r.pack(t, t.TempDir(), "--delta-base-offset", "--window=50", "--depth=50")
	s, err := OpenSet(filepath.Dir(base), []string{filepath.Base(base)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.cache = newBaseCache(200<<10, 100<<10)
	var ids []plumbing.Hash
	for id, o := range r.objects {
		if o.typ == "blob" {
			ids = append(ids, id)
		}
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range ids {
				id := ids[(i+w*7)%len(ids)]
				open := s.OpenBlob
				if i%2 == 0 {
					open = s.OpenBlobCaching
				}
				rc, _, err := open(id)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(got, r.objects[id].data) {
					t.Errorf("%s: %d bytes differ, %v", id, len(got), err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if s.cache.used > s.cache.max {
		t.Errorf("cache holds %d bytes, bound %d", s.cache.used, s.cache.max)
	}
}

// TestSetAcrossPacks: each object is found in whichever pack holds it,
// and an object in two packs is read from the first.
func TestSetAcrossPacks(t *testing.T) {
	r := newTestRepo(t)
	dir := t.TempDir()
	blobs := r.packOf(t, dir, func(o object) bool { return o.typ == "blob" }, "--delta-base-offset")
	others := r.packOf(t, dir, func(o object) bool { return o.typ != "blob" }, "--delta-base-offset")
	all := r.pack(t, dir, "--window=0")
	names := []string{filepath.Base(blobs), filepath.Base(others), filepath.Base(all)}
	s, err := OpenSet(dir, names)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range r.objects {
		p, _, ok := s.find(id)
		if wantPack := map[bool]int{true: 0, false: 1}[want.typ == "blob"]; !ok || p != s.packs[wantPack] {
			t.Fatalf("%s (%s): not read from pack %s", id, want.typ, names[wantPack])
		}
		var got []byte
		if want.typ == "blob" {
			rc, _, err := s.OpenBlob(id)
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			got, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", id, err)
			}
		} else if _, got, err = s.Read(id); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if !bytes.Equal(got, want.data) {
			t.Fatalf("%s: %d bytes differ from git's %d", id, len(got), len(want.data))
		}
	}
}

// TestBaseCacheBounds: the cache keeps at most max bytes, drops the least
// recently used first, and never keeps an item over itemMax.
func TestBaseCacheBounds(t *testing.T) {
	p := &Pack{}
	c := newBaseCache(100, 60)
	c.put(p, 1, Blob, make([]byte, 40))
	c.put(p, 2, Blob, make([]byte, 40))
	c.get(p, 1) // 2 is now the least recently used
	c.put(p, 3, Blob, make([]byte, 40))
	c.put(p, 4, Blob, make([]byte, 61))
	tests := []struct {
		off  int64
		want bool
	}{{1, true}, {2, false}, {3, true}, {4, false}}
	for _, tc := range tests {
		if _, _, ok := c.get(p, tc.off); ok != tc.want {
			t.Errorf("item %d cached: %v, want %v", tc.off, ok, tc.want)
		}
	}
	if c.used != 80 {
		t.Errorf("used %d, want 80", c.used)
	}
}
