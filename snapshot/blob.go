package snapshot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Where a blob's bytes come from. Every choice is made in this file:
//
//   - Open (random access, the FUSE read path), in this order: the memory
//     cache (small blobs read before); the snapshot's contents file, when a
//     checkout or the daemon made it (contents.go), for blobs up to
//     MemBlobMax; a content-addressed file in ROOT/blobs for larger ones,
//     inflated once and shared by every reader (and by FUSE passthrough
//     through BlobFile); else the pinned packs, inflated into the memory
//     cache.
//   - Stream (one pass, a checkout): the pinned packs, read with pread by
//     internal/pack. A checkout that has the contents file copies from it
//     itself (materialize), so Stream never looks at it.
//   - Size: the size cache, else the entry's header in the pinned packs,
//     never inflating the blob.
//   - The contents file itself is written from the packs in pack order
//     (contents.go, through pack.Set.OpenBlobCaching).

// Size is a blob's size, read from its pack entry's header (never
// inflating it) and cached.
func (s *Snapshot) Size(id ID) (int64, error) {
	key := string(id[:])
	if v, ok := s.store.sizes.Get(key); ok {
		return v, nil
	}
	n, err := s.packs.Size(id)
	if err != nil {
		return 0, err
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
	if c := s.presentContents(); c != nil {
		if off, size, ok := c.Locate(id); ok && size <= s.store.opts.MemBlobMax {
			s.store.counts.add(FromContents, size)
			c.hold()
			return &contentsBlob{SectionReader: io.NewSectionReader(c.f, off, size), c: c}, nil
		}
	}
	size, err := s.Size(id)
	if err != nil {
		return nil, err
	}
	if size > s.store.opts.MemBlobMax {
		f, err := s.blobFile(id, size)
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

// readBlob inflates blob id, of size bytes, from the packs into memory.
func (s *Snapshot) readBlob(id ID, size int64) ([]byte, error) {
	r, _, err := s.packs.OpenBlob(id)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := io.Copy(b, r); err != nil {
		return nil, fmt.Errorf("blob %s: %w", id, err)
	}
	if int64(b.Len()) != size {
		return nil, fmt.Errorf("blob %s: read %d bytes, expected %d", id, b.Len(), size)
	}
	return b.Bytes(), nil
}

// blobFile returns a read-only descriptor of blob id inflated into the
// shared on-disk cache ROOT/blobs, inflating it first if needed (once per
// blob in this process; a file published by one rename across processes).
func (s *Snapshot) blobFile(id ID, size int64) (*os.File, error) {
	st := s.store
	path := filepath.Join(st.blobDir, id.String())
	if f, err := os.Open(path); err == nil {
		return f, nil
	}
	_, err, _ := st.inflate.Do(id.String(), func() (any, error) {
		if _, err := os.Stat(path); err == nil {
			return nil, nil
		}
		r, _, err := s.packs.OpenBlob(id)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		tmp, err := os.CreateTemp(st.blobDir, id.String()+".tmp-*")
		if err != nil {
			return nil, fmt.Errorf("blob cache: %w", err)
		}
		defer os.Remove(tmp.Name())
		n, err := io.Copy(tmp, r)
		if err == nil && n != size {
			err = fmt.Errorf("inflated %d bytes, expected %d", n, size)
		}
		if err == nil {
			err = tmp.Chmod(0o444)
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", id, err)
		}
		return nil, os.Rename(tmp.Name(), path)
	})
	if err != nil {
		return nil, err
	}
	return os.Open(path)
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

// contentsBlob is a range of the snapshot's contents file; it holds the
// file open until closed.
type contentsBlob struct {
	*io.SectionReader
	c      *Contents
	closed atomic.Bool
}

func (b *contentsBlob) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.c.drop()
	}
	return nil
}

type fileBlob struct {
	*os.File
	size int64
}

func (f fileBlob) Size() int64 { return f.size }

// BlobFile returns the underlying descriptor of a blob served from
// ROOT/blobs (for FUSE passthrough), or nil for any other blob.
func BlobFile(b Blob) *os.File {
	if fb, ok := b.(fileBlob); ok {
		return fb.File
	}
	return nil
}
