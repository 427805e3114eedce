package pack

import (
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
)

// Type is an object's type as a pack entry's header stores it.
type Type int8

// The types of pack entries; OfsDelta and RefDelta are never an object's
// type, only how an entry stores it.
const (
	Commit   Type = 1
	Tree     Type = 2
	Blob     Type = 3
	Tag      Type = 4
	OfsDelta Type = 6
	RefDelta Type = 7
)

func (t Type) String() string {
	switch t {
	case Commit:
		return "commit"
	case Tree:
		return "tree"
	case Blob:
		return "blob"
	case Tag:
		return "tag"
	case OfsDelta:
		return "ofs-delta"
	case RefDelta:
		return "ref-delta"
	}
	return fmt.Sprintf("type %d", int(t))
}

func (t Type) isDelta() bool { return t == OfsDelta || t == RefDelta }

// header is a pack entry's header.
type header struct {
	typ     Type
	size    int64 // inflated size of the entry's data (the delta, for deltas)
	dataOff int64 // where the zlib stream starts
	baseOff int64 // OfsDelta: the base's offset
	baseRef plumbing.Hash
}

// maxHeader bounds an entry header: a 10-byte size, then a 10-byte
// offset or a 20-byte id.
const maxHeader = 64

// header reads the header of the entry at off.
func (p *Pack) header(off int64) (header, error) {
	var buf [maxHeader]byte
	n, err := p.f.ReadAt(buf[:], off)
	if n == 0 {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return header{}, fmt.Errorf("pack %s at %d: %w", p.name, off, err)
	}
	return parseHeader(buf[:n], off, p.name)
}

// parseHeader decodes the header at the start of b, read from offset off.
func parseHeader(b []byte, off int64, name string) (header, error) {
	bad := func() (header, error) {
		return header{}, fmt.Errorf("pack %s at %d: malformed object header", name, off)
	}
	if len(b) == 0 {
		return bad()
	}
	i := 0
	c := b[i]
	i++
	h := header{typ: Type(c>>4) & 7, size: int64(c & 15)}
	for shift := 4; c&0x80 != 0; shift += 7 {
		if i >= len(b) || shift > 56 {
			return bad()
		}
		c = b[i]
		i++
		h.size |= int64(c&0x7f) << shift
	}
	switch h.typ {
	case OfsDelta:
		if i >= len(b) {
			return bad()
		}
		c = b[i]
		i++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(b) || rel > 1<<48 {
				return bad()
			}
			c = b[i]
			i++
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		if rel <= 0 || rel > off {
			return bad()
		}
		h.baseOff = off - rel
	case RefDelta:
		if i+idSize > len(b) {
			return bad()
		}
		copy(h.baseRef[:], b[i:i+idSize])
		i += idSize
	case Commit, Tree, Blob, Tag:
	default:
		return bad()
	}
	h.dataOff = off + int64(i)
	return h, nil
}
