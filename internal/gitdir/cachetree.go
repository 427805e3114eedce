package gitdir

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
)

// CacheTree is one directory of an index's cache-tree extension ("TREE"):
// the tree object git would get by writing that span of the index as a
// tree, and how many entries it covers. With it, git compares HEAD with
// the index (git status, diff --cached) by tree ids, skipping every
// unchanged directory, instead of reading every tree object.
type CacheTree struct {
	Name     string // path component; "" for the root
	Entries  int    // index entries below it, at any depth
	ID       [20]byte
	Subtrees []*CacheTree
}

// WithCacheTree returns an encoded index (version 2 or 3, ending with its
// SHA-1) with root's TREE extension appended and the checksum made anew.
func WithCacheTree(index []byte, root *CacheTree) ([]byte, error) {
	if len(index) < 12+20 || string(index[:4]) != "DIRC" {
		return nil, errors.New("cache tree: not an index")
	}
	body := index[:len(index)-20]
	if sum := sha1.Sum(body); !bytes.Equal(sum[:], index[len(index)-20:]) {
		return nil, errors.New("cache tree: index checksum does not match")
	}
	var ext bytes.Buffer
	var write func(t *CacheTree)
	write = func(t *CacheTree) {
		ext.WriteString(t.Name)
		ext.WriteByte(0)
		fmt.Fprintf(&ext, "%d %d\n", t.Entries, len(t.Subtrees))
		ext.Write(t.ID[:])
		for _, s := range t.Subtrees {
			write(s)
		}
	}
	write(root)
	out := make([]byte, 0, len(body)+8+ext.Len()+20)
	out = append(out, body...)
	out = append(out, "TREE"...)
	n := uint32(ext.Len())
	out = append(out, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	out = append(out, ext.Bytes()...)
	sum := sha1.Sum(out)
	return append(out, sum[:]...), nil
}
