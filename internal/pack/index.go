package pack

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"golang.org/x/sys/unix"
)

// headerSize is a pack's "PACK", version and object count; trailerSize its
// closing SHA-1 of everything before.
const (
	headerSize  = 12
	trailerSize = 20
	idSize      = len(plumbing.ZeroHash)
)

// Pack is one pack file, open for pread, and its decoded index.
type Pack struct {
	name string // base name, "pack-<sha>"
	f    *os.File
	size int64
	idx  *idxfile.MemoryIndex
}

// Open opens the pack at base (its path without ".pack" or ".idx") and
// decodes its index, checking that every offset the index gives lies
// inside the pack, so that no lookup can later point outside it.
//
// A decoded index is shared with every other Pack of the process opened
// on the same idx file (a hard link of it included), and kept for a while
// after (indexcache.go).
func Open(base string) (*Pack, error) {
	name := filepath.Base(base)
	f, err := os.Open(base + ".pack")
	if err != nil {
		return nil, fmt.Errorf("open pack %s: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pack %s: %w", name, err)
	}
	p := &Pack{name: name, f: f, size: st.Size()}
	// The key is the descriptor's file, decoded from the same
	// descriptor: a rename over the path in between cannot mix them.
	idxf, err := os.Open(base + ".idx")
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("pack index: %w", err)
	}
	defer idxf.Close()
	var ist unix.Stat_t
	if err := unix.Fstat(int(idxf.Fd()), &ist); err != nil {
		f.Close()
		return nil, fmt.Errorf("pack index %s.idx: %w", name, err)
	}
	key := indexKey{dev: uint64(ist.Dev), ino: uint64(ist.Ino), size: ist.Size,
		mtimeNsec: ist.Mtim.Nano(), packSize: p.size}
	if idx, ok := sharedIndexes.get(key); ok {
		p.idx = idx
		return p, nil
	}
	if p.idx, err = decodeIndex(idxf); err != nil {
		f.Close()
		return nil, err
	}
	if err := p.checkIndex(); err != nil {
		f.Close()
		return nil, err
	}
	sharedIndexes.put(key, p.idx)
	return p, nil
}

// readIndex decodes the pack index at path.
func readIndex(path string) (*idxfile.MemoryIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pack index: %w", err)
	}
	defer f.Close()
	return decodeIndex(f)
}

// decodeIndex decodes the pack index open as f.
func decodeIndex(f *os.File) (*idxfile.MemoryIndex, error) {
	idx, err := readWholeIndex(f)
	if err != nil {
		return nil, fmt.Errorf("pack index %s: %w", filepath.Base(f.Name()), err)
	}
	return idx, nil
}

func readWholeIndex(f *os.File) (*idxfile.MemoryIndex, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Size < idxFixed || st.Size > maxIdxSize {
		return nil, fmt.Errorf("%w: size %d", idxfile.ErrMalformedIdxFile, st.Size)
	}
	b := make([]byte, st.Size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return parseIndex(b)
}

// A version 2 pack index: magic and version, the fanout table, then for N
// objects their ids, CRC-32s and 32-bit offsets, the 64-bit offsets of
// those whose 32-bit one has its top bit set, the pack's checksum and the
// index's own (SHA-1 of all before it).
const (
	idxHeader  = 8
	idxFanout  = 256 * 4
	idxFixed   = idxHeader + idxFanout + idxTrailer
	maxIdxSize = 1 << 40 // beyond any pack git writes; bounds the read
)

// parseIndex decodes a whole version 2 index held in b, checked as
// go-git's idxfile.Decoder checks it, into tables that are slices of b:
// one read of the file and crypto/sha1 for its checksum, where the decoder
// reads each table through a tee into a collision-detecting SHA-1 (which
// guards against crafted collisions; this checksum only detects damage).
// git.git's 23.7 MB index, medians of 11: 24.6 -> 17.0 ms, paid by every
// process that opens the pack (a checkout, the daemon once).
func parseIndex(b []byte) (*idxfile.MemoryIndex, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{idxfile.ErrMalformedIdxFile}, args...)...)
	}
	if len(b) < idxFixed {
		return nil, bad("%d bytes", len(b))
	}
	if !bytes.Equal(b[:4], []byte{0xff, 't', 'O', 'c'}) {
		return nil, bad("not a version 2 index")
	}
	idx := idxfile.NewMemoryIndex()
	if idx.Version = binary.BigEndian.Uint32(b[4:8]); idx.Version != idxfile.VersionSupported {
		return nil, fmt.Errorf("%w: v%d", idxfile.ErrUnsupportedVersion, idx.Version)
	}
	for k := range idx.Fanout {
		idx.Fanout[k] = binary.BigEndian.Uint32(b[idxHeader+4*k:])
		if k > 0 && idx.Fanout[k] < idx.Fanout[k-1] {
			return nil, bad("fanout table decreases at entry %d", k)
		}
	}
	n := int64(idx.Fanout[255])
	perObject := int64(idSize + 4 + 4)
	if n > (int64(len(b))-idxFixed)/perObject {
		return nil, bad("%d objects in %d bytes", n, len(b))
	}
	large := int64(len(b)) - idxFixed - n*perObject // the 64-bit offsets' bytes, checked below
	body := len(b) - trailerSize
	if sum := sha1.Sum(b[:body]); !bytes.Equal(sum[:], b[body:]) {
		return nil, bad("checksum mismatch")
	}
	const id = int64(idSize)
	names := int64(idxHeader + idxFanout)
	crcs := names + n*id
	offsets := crcs + n*4
	o64 := offsets + n*4
	var count int64
	var first uint32
	for k := range idx.FanoutMapping {
		idx.FanoutMapping[k] = -1
		c := int64(idx.Fanout[k] - first)
		first = idx.Fanout[k]
		if c == 0 {
			continue
		}
		idx.FanoutMapping[k] = len(idx.Names)
		idx.Names = append(idx.Names, b[names+count*id:names+(count+c)*id:names+(count+c)*id])
		idx.CRC32 = append(idx.CRC32, b[crcs+count*4:crcs+(count+c)*4:crcs+(count+c)*4])
		idx.Offset32 = append(idx.Offset32, b[offsets+count*4:offsets+(count+c)*4:offsets+(count+c)*4])
		count += c
	}
	var o64count int64
	for i := int64(0); i < n; i++ {
		if b[offsets+4*i]&0x80 != 0 {
			o64count++
		}
	}
	if o64count*8 != large {
		return nil, bad("%d large offsets in a table of %d bytes", o64count, large)
	}
	if large > 0 {
		idx.Offset64 = b[o64 : o64+large : o64+large]
	}
	copy(idx.PackfileChecksum[:], b[body-trailerSize:body])
	copy(idx.IdxChecksum[:], b[body:])
	return idx, nil
}

// checkIndex checks the decoded tables' shapes (Find indexes them without
// further checks) and that every object starts inside the pack.
func (p *Pack) checkIndex() error {
	bad := func(format string, args ...any) error {
		return &CorruptError{File: p.name + ".idx", Problem: fmt.Sprintf(format, args...)}
	}
	idx := p.idx
	for b := 0; b < 256; b++ {
		k := idx.FanoutMapping[b]
		if k < 0 {
			continue
		}
		if k >= len(idx.Names) || k >= len(idx.Offset32) {
			return bad("fanout entry %d out of range", b)
		}
		n := len(idx.Names[k]) / idSize
		if len(idx.Names[k]) != n*idSize || len(idx.Offset32[k]) != n*4 {
			return bad("tables of fanout entry %d disagree", b)
		}
		for i := 0; i < n; i++ {
			off, ok := p.offset(k, i)
			if !ok || off < headerSize || off >= p.size-trailerSize {
				return bad("object %x at an offset outside the pack", idx.Names[k][i*idSize:(i+1)*idSize])
			}
		}
	}
	return nil
}

// Name is the pack's base name, "pack-<sha>".
func (p *Pack) Name() string { return p.name }

// Close closes the pack's descriptor.
func (p *Pack) Close() error { return p.f.Close() }

// Find returns the offset of id's entry in the pack. It takes no lock and
// allocates nothing (go-git's FindOffset takes a write lock and grows a
// map with every call).
func (p *Pack) Find(id plumbing.Hash) (int64, bool) {
	k := p.idx.FanoutMapping[id[0]]
	if k < 0 || k >= len(p.idx.Names) {
		return 0, false
	}
	names := p.idx.Names[k]
	lo, hi := 0, len(names)/idSize
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(names[mid*idSize:(mid+1)*idSize], id[:]); {
		case c == 0:
			return p.offset(k, mid)
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false
}

// offset is the i-th offset of fanout slot k: 31 bits, or an index into
// the 64-bit table when the top bit is set.
func (p *Pack) offset(k, i int) (int64, bool) {
	t := p.idx.Offset32[k]
	if (i+1)*4 > len(t) {
		return 0, false
	}
	o := binary.BigEndian.Uint32(t[i*4:])
	if o&(1<<31) == 0 {
		return int64(o), true
	}
	j := uint64(o&^(1<<31)) * 8
	if j+8 > uint64(len(p.idx.Offset64)) {
		return 0, false
	}
	o64 := binary.BigEndian.Uint64(p.idx.Offset64[j:])
	if o64 > 1<<62 {
		return 0, false
	}
	return int64(o64), true
}
