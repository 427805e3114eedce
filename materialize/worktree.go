package materialize

import (
	"github.com/gitfs/gitfs/internal/gitattr"
	"github.com/gitfs/gitfs/snapshot"
)

// converter is a source that knows what `git checkout` writes for a path
// (*snapshot.Snapshot: the blob after the tree's .gitattributes
// conversions). A file that converts nothing is written from the contents
// file or the packs as usual; one that does, from the converted bytes.
type converter interface {
	Conversion(path string, e snapshot.Entry) (gitattr.Conversion, error)
	OpenAt(path string, e snapshot.Entry) (snapshot.Blob, error)
}

var _ converter = (*snapshot.Snapshot)(nil)

// convertedBlob returns the bytes checkout writes for file f when a
// conversion applies to it (ok), to be closed.
func (w *writer) convertedBlob(f *fileItem) (b snapshot.Blob, ok bool, err error) {
	c, isConv := w.src.(converter)
	if !isConv {
		return nil, false, nil
	}
	path := w.p.filePath(f)
	e := snapshot.Entry{Name: f.name, Kind: f.kind, ID: f.id}
	conv, err := c.Conversion(path, e)
	if err != nil || conv.None() {
		return nil, false, err
	}
	b, err = c.OpenAt(path, e)
	return b, err == nil, err
}
