package pack

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
)

// resum rewrites an index's own checksum after an edit of its body.
func resum(b []byte) []byte {
	sum := sha1.Sum(b[:len(b)-trailerSize])
	copy(b[len(b)-trailerSize:], sum[:])
	return b
}

// withLargeOffsets gives the first two objects of index b 64-bit offsets
// (the same values they had), as an index of a pack over 2 GiB has.
func withLargeOffsets(t *testing.T, b []byte) []byte {
	t.Helper()
	n := int(binary.BigEndian.Uint32(b[idxHeader+255*4:]))
	if n < 2 {
		t.Fatalf("index of %d objects", n)
	}
	offsets := idxHeader + idxFanout + n*(idSize+4)
	end := offsets + n*4
	out := append([]byte(nil), b[:end]...)
	for i := 0; i < 2; i++ {
		old := binary.BigEndian.Uint32(out[offsets+4*i:])
		binary.BigEndian.PutUint32(out[offsets+4*i:], 0x80000000|uint32(i))
		out = binary.BigEndian.AppendUint64(out, uint64(old))
	}
	out = append(out, b[end:]...)
	return resum(out)
}

func decodeWithGoGit(b []byte) (*idxfile.MemoryIndex, error) {
	idx := idxfile.NewMemoryIndex()
	return idx, idxfile.NewDecoder(bytes.NewReader(b)).Decode(idx)
}

func sameIndex(t *testing.T, got, want *idxfile.MemoryIndex) {
	t.Helper()
	eq := func(a, b [][]byte) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	switch {
	case got.Version != want.Version, got.Fanout != want.Fanout, got.FanoutMapping != want.FanoutMapping:
		t.Error("header or fanout differs from go-git's")
	case !eq(got.Names, want.Names), !eq(got.CRC32, want.CRC32), !eq(got.Offset32, want.Offset32):
		t.Error("tables differ from go-git's")
	case !bytes.Equal(got.Offset64, want.Offset64):
		t.Errorf("64-bit offsets %x, go-git's %x", got.Offset64, want.Offset64)
	case got.PackfileChecksum != want.PackfileChecksum, got.IdxChecksum != want.IdxChecksum:
		t.Error("checksums differ from go-git's")
	}
	for _, id := range want.Names[0:1] {
		var h [20]byte
		copy(h[:], id[:idSize])
		a, errA := got.FindOffset(h)
		b, errB := want.FindOffset(h)
		if a != b || errA != nil || errB != nil {
			t.Errorf("FindOffset %x: %d %v, go-git's %d %v", h, a, errA, b, errB)
		}
	}
}

// TestParseIndex: an index decodes to what go-git's decoder makes of it,
// with and without 64-bit offsets; damage go-git rejects is rejected.
func TestParseIndex(t *testing.T) {
	r := newTestRepo(t)
	base := r.pack(t, filepath.Join(t.TempDir(), "p"))
	plain, err := os.ReadFile(base + ".idx")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"plain": plain, "large offsets": withLargeOffsets(t, plain)} {
		want, err := decodeWithGoGit(b)
		if err != nil {
			t.Fatalf("%s: go-git: %v", name, err)
		}
		got, err := parseIndex(append([]byte(nil), b...))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameIndex(t, got, want)
		if name == "large offsets" && len(got.Offset64) != 16 {
			t.Errorf("64-bit offsets: %d bytes, want 16", len(got.Offset64))
		}
	}

	n := int(binary.BigEndian.Uint32(plain[idxHeader+255*4:]))
	offsets := idxHeader + idxFanout + n*(idSize+4)
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), plain...)) }
	bad := map[string][]byte{
		"empty":     nil,
		"truncated": plain[:len(plain)-1],
		"magic":     edit(func(b []byte) []byte { b[1] = 'x'; return resum(b) }),
		"version":   edit(func(b []byte) []byte { b[7] = 3; return resum(b) }),
		"checksum":  edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"body":      edit(func(b []byte) []byte { b[idxHeader+idxFanout] ^= 1; return b }),
		"fanout decreases": edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[idxHeader+10*4:], uint32(n))
			return resum(b)
		}),
		"more objects than bytes": edit(func(b []byte) []byte {
			for k := 200; k < 256; k++ {
				binary.BigEndian.PutUint32(b[idxHeader+4*k:], 1<<30)
			}
			return resum(b)
		}),
		"large offset without its table": edit(func(b []byte) []byte {
			b[offsets] |= 0x80
			return resum(b)
		}),
		"stray bytes": edit(func(b []byte) []byte {
			tail := append([]byte(nil), b[len(b)-idxTrailer:]...)
			return resum(append(append(b[:len(b)-idxTrailer], make([]byte, 8)...), tail...))
		}),
	}
	for name, b := range bad {
		if _, err := parseIndex(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := decodeWithGoGit(b); err == nil {
			t.Logf("%s: go-git accepts it", name)
		}
	}
}
