package gitdir

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The modes an index records, as git writes them.
const (
	ModeRegular    uint32 = 0o100644
	ModeExecutable uint32 = 0o100755
	ModeSymlink    uint32 = 0o120000
	ModeGitlink    uint32 = 0o160000
)

// IndexEntry is one path of an index (stage 0) and the stat data git
// compares with the working tree's to find it unchanged without reading it.
type IndexEntry struct {
	Path                     string // slash-separated, relative to the top
	ID                       [20]byte
	Mode                     uint32 // one of the Mode constants
	Ctime, Mtime             time.Time
	Dev, Ino, UID, GID, Size uint32
}

// entryFixed is the size of an entry before its path: ten 32-bit stat
// fields, the object id and the 16-bit flags.
const entryFixed = 10*4 + 20 + 2

// EncodeIndex returns entries as an index file (version 2), sorted as git
// sorts them, with root's cache tree ("TREE") if root is not nil, ending
// with its SHA-1: what git writes for the same entries, byte for byte.
//
// It replaces go-git's encoder on the paths that write a whole tree's
// index (ws update, checkout --git): that one writes each field through
// reflection and hashes with collision detection, 60 ms of a 20k-file ws
// update's ~95 ms of daemon CPU; a collision in an index we write from
// ids we already trust detects nothing.
func EncodeIndex(entries []IndexEntry, root *CacheTree) ([]byte, error) {
	byPath := func(a, b IndexEntry) int { return strings.Compare(a.Path, b.Path) }
	if !slices.IsSortedFunc(entries, byPath) {
		entries = slices.Clone(entries)
		slices.SortFunc(entries, byPath)
	}
	size := 12 + 20
	for i := range entries {
		size += (entryFixed + len(entries[i].Path) + 8) &^ 7
	}
	out := make([]byte, 0, size+64*1024) // and a cache tree's share
	out = append(out, "DIRC"...)
	out = binary.BigEndian.AppendUint32(out, 2)
	out = binary.BigEndian.AppendUint32(out, uint32(len(entries)))
	for i := range entries {
		e := &entries[i]
		if e.Path == "" || strings.IndexByte(e.Path, 0) >= 0 {
			return nil, fmt.Errorf("index: bad path %q", e.Path)
		}
		if i > 0 && entries[i-1].Path == e.Path {
			return nil, fmt.Errorf("index: %q listed twice", e.Path)
		}
		start := len(out)
		out = appendTime(out, e.Ctime)
		out = appendTime(out, e.Mtime)
		for _, v := range [...]uint32{e.Dev, e.Ino, e.Mode, e.UID, e.GID, e.Size} {
			out = binary.BigEndian.AppendUint32(out, v)
		}
		out = append(out, e.ID[:]...)
		out = binary.BigEndian.AppendUint16(out, uint16(min(len(e.Path), 0xfff)))
		out = append(out, e.Path...)
		// NUL-padded to a multiple of 8 bytes, at least one NUL.
		n := len(out) - start
		out = append(out, make([]byte, (n+8)&^7-n)...)
	}
	if root != nil {
		out = appendCacheTree(out, root)
	}
	sum := sha1.Sum(out)
	return append(out, sum[:]...), nil
}

func appendTime(out []byte, t time.Time) []byte {
	if t.IsZero() || t.Unix() < 0 {
		return append(out, 0, 0, 0, 0, 0, 0, 0, 0) // before 1970: git's "unknown"
	}
	out = binary.BigEndian.AppendUint32(out, uint32(t.Unix()))
	return binary.BigEndian.AppendUint32(out, uint32(t.Nanosecond()))
}

// ReadIndex parses an index file of version 2 or 3 into its stage-0
// entries, in file order. It reads no extension and does not check the
// checksum: it is meant for reusing what an earlier EncodeIndex (or git)
// recorded, which a caller compares with what it would write anyway.
// Any other version, or a file it cannot parse, is an error.
func ReadIndex(data []byte) ([]IndexEntry, error) {
	if len(data) < 12+20 || string(data[:4]) != "DIRC" {
		return nil, errors.New("index: not an index")
	}
	version := binary.BigEndian.Uint32(data[4:])
	if version != 2 && version != 3 {
		return nil, fmt.Errorf("index: version %d", version)
	}
	n := binary.BigEndian.Uint32(data[8:])
	body := data[:len(data)-20]
	if uint64(n) > uint64(len(body))/(entryFixed+2) {
		return nil, fmt.Errorf("index: %d entries in %d bytes", n, len(body))
	}
	out := make([]IndexEntry, 0, n)
	off := 12
	for i := uint32(0); i < n; i++ {
		if off+entryFixed > len(body) {
			return nil, errors.New("index: truncated")
		}
		b := body[off:]
		u := func(k int) uint32 { return binary.BigEndian.Uint32(b[4*k:]) }
		flags := binary.BigEndian.Uint16(b[entryFixed-2:])
		start := entryFixed
		if flags&0x4000 != 0 { // extended flags (version 3)
			start += 2
		}
		end := bytes.IndexByte(body[off+start:], 0)
		if end < 0 {
			return nil, errors.New("index: truncated")
		}
		e := IndexEntry{
			Path:  string(body[off+start : off+start+end]),
			Ctime: stamp(u(0), u(1)), Mtime: stamp(u(2), u(3)),
			Dev: u(4), Ino: u(5), Mode: u(6), UID: u(7), GID: u(8), Size: u(9),
		}
		copy(e.ID[:], b[40:60])
		if flags&0x3000 == 0 {
			out = append(out, e)
		}
		off += (start + end + 8) &^ 7
	}
	return out, nil
}

func stamp(sec, nsec uint32) time.Time {
	if sec == 0 && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(int64(sec), int64(nsec))
}
