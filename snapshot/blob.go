package snapshot

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Where a blob's bytes come from. Every choice is made in this file:
//
//   - Open (random access, the FUSE read path), in this order: the memory
//     cache (small blobs inflated here before); the blob store ROOT/blobs
//     (fill.go: every blob of a snapshot, filled in the background by the
//     daemon and by a checkout, shared by every snapshot and process);
//     else the pinned packs: a small blob is inflated into the memory
//     cache, a large one (over MemBlobMax) into the blob store by the
//     reader itself. A read never waits for a fill (invariant 2).
//   - Stream (one pass, a checkout without the store): the pinned packs.
//   - Size: the size cache, else the size the blob store recorded (two
//     system calls), else the entry's header in the pinned packs (a
//     delta's means inflating the start of the delta).

// Size is a blob's size, from the blob store's record or its pack
// entry's header, and cached.
func (s *Snapshot) Size(id ID) (int64, error) {
	key := string(id[:])
	if v, ok := s.store.sizes.Get(key); ok {
		return v, nil
	}
	n, ok := s.store.stored.StoredSize(id)
	if !ok {
		var err error
		if n, err = s.packs.Size(id); err != nil {
			return 0, err
		}
	}
	s.store.sizes.Set(key, n, 64)
	return n, nil
}

// Stream returns a reader of a blob's content and its size, read from the
// pinned packs. Only delta bases are cached: it is meant for one pass over
// many blobs, as a checkout makes.
func (s *Snapshot) Stream(id ID) (io.ReadCloser, int64, error) {
	return s.packs.OpenBlob(id)
}

// Blob is random access to a blob's content.
type Blob interface {
	io.ReaderAt
	Size() int64
	io.Closer
}

// Open returns random access to a blob, from the first source that has it
// (see the top of this file).
func (s *Snapshot) Open(id ID) (Blob, error) {
	key := string(id[:])
	if v, ok := s.store.blobs.Get(key); ok {
		s.store.counts.add(FromMemory, int64(len(v)))
		return memBlob{bytes.NewReader(v)}, nil
	}
	size, err := s.Size(id)
	if err != nil {
		return nil, err
	}
	if f, err := s.store.stored.Open(id, size); err == nil {
		s.store.counts.add(FromBlobFile, size)
		return fileBlob{f, size}, nil
	}
	if size > s.store.opts.MemBlobMax {
		f, err := s.storeLarge(id, size)
		if err != nil {
			return nil, err
		}
		s.store.counts.add(FromBlobFile, size)
		return fileBlob{f, size}, nil
	}
	data, err := s.readBlob(id, size)
	if err != nil {
		return nil, err
	}
	s.store.blobs.Set(key, data, int64(len(data))+64)
	s.store.counts.add(FromPacks, size)
	return memBlob{bytes.NewReader(data)}, nil
}

// readBlob inflates blob id, of size bytes, from the packs into memory
// (shared with the packs' base cache: read only).
func (s *Snapshot) readBlob(id ID, size int64) ([]byte, error) {
	data, err := s.packs.ReadBlob(id)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("blob %s: read %d bytes, expected %d", id, len(data), size)
	}
	return data, nil
}

// storeLarge inflates a large blob into the blob store for a reader, once
// per blob in this process (a fill storing it at the same time publishes
// the same verified bytes), and opens it.
func (s *Snapshot) storeLarge(id ID, size int64) (*os.File, error) {
	st := s.store
	_, err, _ := st.inflate.Do(id.String(), func() (any, error) {
		if st.stored.Has(id, size) {
			return nil, nil
		}
		r, _, err := s.packs.OpenBlob(id)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return nil, st.stored.Put(id, size, r)
	})
	if err != nil {
		return nil, err
	}
	return st.stored.Open(id, size)
}

// ReadLink returns a symlink entry's target.
func (s *Snapshot) ReadLink(id ID) (string, error) {
	b, err := s.Open(id)
	if err != nil {
		return "", err
	}
	defer b.Close()
	buf := make([]byte, b.Size())
	if _, err := b.ReadAt(buf, 0); err != nil && err != io.EOF {
		return "", err
	}
	return string(buf), nil
}

type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

type fileBlob struct {
	*os.File
	size int64
}

func (f fileBlob) Size() int64 { return f.size }

// BlobFile returns the underlying descriptor of a blob served from the
// blob store ROOT/blobs (to copy from in the kernel, or for FUSE
// passthrough), or nil for any other blob.
func BlobFile(b Blob) *os.File {
	if fb, ok := b.(fileBlob); ok {
		return fb.File
	}
	return nil
}
