package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gitattr"
)

// Working-tree bytes. What `git checkout` writes for a file is its blob
// after the conversions the tree's .gitattributes call for (eol=crlf,
// ident, working-tree-encoding; filter drivers are not run), so what a
// workspace shows and a checkout writes goes through OpenAt and SizeAt,
// which take the path. Most files of most trees convert nothing: those
// cost one attribute lookup and are the blob itself, size from the pack
// header included. A converted file's bytes are made from the whole blob
// and kept in the memory cache, keyed by blob and conversion.

// attrs are a snapshot's .gitattributes rules, read on first use by
// walking every tree once.
type attrs struct {
	once  sync.Once
	rules *gitattr.Rules // nil: the tree has no .gitattributes
	err   error
}

// worktreeConfig is core.autocrlf and core.eol of a fresh clone on Linux.
var worktreeConfig = gitattr.Config{}

func (s *Snapshot) rules() (*gitattr.Rules, error) {
	s.attrs.once.Do(func() { s.attrs.rules, s.attrs.err = s.readRules() })
	return s.attrs.rules, s.attrs.err
}

// readRules adds every .gitattributes of the tree (a symlinked one is
// read as its target's bytes, as git reads it from the index). Subtrees
// an earlier snapshot of this process found to hold none are not walked:
// a slot's every ws update brings a new snapshot, and walking the 1048
// trees of the 20k-file benchmark tree took 2.5 ms of each update.
func (s *Snapshot) readRules() (*gitattr.Rules, error) {
	var rules *gitattr.Rules
	var free []ID // subtrees this walk found without one
	var walk func(tree ID, dir string) (bool, error)
	walk = func(tree ID, dir string) (bool, error) {
		entries, err := s.Tree(tree)
		if err != nil {
			return false, err
		}
		found := false
		for _, e := range entries {
			switch {
			case e.Kind == Dir:
				if s.store.attrFree.has("", e.ID) {
					continue
				}
				f, err := walk(e.ID, join(dir, e.Name))
				if err != nil {
					return false, err
				}
				if !f {
					free = append(free, e.ID)
				}
				found = found || f
			case e.Name == ".gitattributes" && (e.Kind == File || e.Kind == Executable || e.Kind == Symlink):
				found = true
				b, err := s.Open(e.ID)
				if err != nil {
					return false, fmt.Errorf("%s: %w", join(dir, e.Name), err)
				}
				data := make([]byte, b.Size())
				_, err = b.ReadAt(data, 0)
				b.Close()
				if err != nil && err != io.EOF {
					return false, fmt.Errorf("%s: %w", join(dir, e.Name), err)
				}
				if rules == nil {
					rules = &gitattr.Rules{}
				}
				rules.Add(dir, data)
			}
		}
		return found, nil
	}
	if _, err := walk(s.tree, ""); err != nil {
		return nil, fmt.Errorf("snapshot %s: .gitattributes: %w", s.meta.Commit, err)
	}
	s.store.attrFree.add("", free)
	return rules, nil
}

// maxAttrFreeTrees bounds the trees remembered without .gitattributes
// (about 60 bytes each).
const maxAttrFreeTrees = 1 << 18

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// Conversion is what checkout does to the bytes of file e at path.
func (s *Snapshot) Conversion(path string, e Entry) (gitattr.Conversion, error) {
	if e.Kind != File && e.Kind != Executable {
		return gitattr.Conversion{}, nil // symlinks and submodules are never converted
	}
	rules, err := s.rules()
	if err != nil || rules == nil {
		return gitattr.Conversion{}, err
	}
	return rules.Lookup(path).Conversion(worktreeConfig), nil
}

// OpenAt returns random access to what checkout writes for entry e at
// path: the blob, converted as the tree's attributes say.
func (s *Snapshot) OpenAt(path string, e Entry) (Blob, error) {
	data, _, err := s.converted(path, e)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return s.Open(e.ID)
	}
	s.store.counts.add(FromMemory, int64(len(data)))
	return memBlob{bytes.NewReader(data)}, nil
}

// ErrTooLarge is ReadFile's answer for content over its bound.
var ErrTooLarge = errors.New("larger than asked for")

// ReadFile returns what OpenAt would serve for entry e at path, whole, in
// buf (grown if too small), or ErrTooLarge if that is over max bytes. It
// is OpenAt, ReadAt and Close for a caller that wants many small files
// whole (the daemon pushing a directory's files into the page cache): a
// blob from the store is read through a bare descriptor, opened and
// closed here, without an *os.File's registration and cleanup.
func (s *Snapshot) ReadFile(path string, e Entry, buf []byte, max int64) ([]byte, error) {
	data, _, err := s.converted(path, e)
	if err != nil {
		return nil, err
	}
	if data == nil {
		if v, ok := s.store.blobs.Get(string(e.ID[:])); ok {
			data = v
		}
	}
	if data != nil {
		if int64(len(data)) > max {
			return nil, ErrTooLarge
		}
		s.store.counts.add(FromMemory, int64(len(data)))
		return append(buf[:0], data...), nil
	}
	size, err := s.Size(e.ID)
	if err != nil {
		return nil, err
	}
	if size > max {
		return nil, ErrTooLarge
	}
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	var n int
	if fd, err := s.store.stored.OpenFD(e.ID, size); err == nil {
		n, err = preadFull(fd, buf)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", e.ID, err)
		}
		s.store.counts.add(FromBlobFile, size)
	} else {
		b, err := s.Open(e.ID) // not stored: the packs (or a racing fill's file)
		if err != nil {
			return nil, err
		}
		n, err = b.ReadAt(buf, 0)
		b.Close()
		if err != nil && err != io.EOF {
			return nil, err
		}
	}
	if int64(n) != size {
		return nil, fmt.Errorf("blob %s: read %d bytes, expected %d", e.ID, n, size)
	}
	return buf, nil
}

// preadFull reads len(p) bytes from fd at offset 0, or up to its end.
func preadFull(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := unix.Pread(fd, p[n:], int64(n))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return n, err
		case k == 0:
			return n, nil
		}
		n += k
	}
	return n, nil
}

// SizeAt is the size of what checkout writes for entry e at path.
func (s *Snapshot) SizeAt(path string, e Entry) (int64, error) {
	data, _, err := s.converted(path, e)
	if err != nil {
		return 0, err
	}
	if data == nil {
		return s.Size(e.ID)
	}
	return int64(len(data)), nil
}

// converted returns the converted bytes of e at path, or nil when no
// conversion applies.
func (s *Snapshot) converted(path string, e Entry) ([]byte, gitattr.Conversion, error) {
	conv, err := s.Conversion(path, e)
	if err != nil || conv.None() {
		return nil, conv, err
	}
	key := "worktree\x00" + string(e.ID[:]) + "\x00" + conv.String()
	if v, ok := s.store.blobs.Get(key); ok {
		return v, conv, nil
	}
	size, err := s.Size(e.ID)
	if err != nil {
		return nil, conv, err
	}
	blob, err := s.readBlob(e.ID, size)
	if err != nil {
		return nil, conv, err
	}
	out, err := conv.Apply(e.ID.String(), blob)
	if err != nil && out == nil {
		return nil, conv, fmt.Errorf("%s: %w", path, err)
	}
	// An encoding git could not apply: git writes the UTF-8 bytes (and
	// complains); so do we, having nothing better.
	s.store.blobs.Set(key, out, int64(len(out))+64)
	return out, conv, nil
}
