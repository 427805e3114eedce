package gitdir

import (
	"bytes"
	"encoding/binary"
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

// appendCacheTree appends root as a "TREE" extension.
func appendCacheTree(out []byte, root *CacheTree) []byte {
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
	out = append(out, "TREE"...)
	out = binary.BigEndian.AppendUint32(out, uint32(ext.Len()))
	return append(out, ext.Bytes()...)
}
