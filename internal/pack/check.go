package pack

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// CorruptError is damage to a pack or its index (missing, truncated, not
// matching each other or their checksums), as opposed to failing to read
// them. Callers decide what damage means: a mirror is re-cloned, a
// snapshot is never served.
type CorruptError struct {
	File    string // base name of the damaged file, e.g. "pack-<sha>.pack"
	Problem string
	Err     error // the underlying error, if any (os.ErrNotExist for a missing file)
}

func (e *CorruptError) Error() string { return e.File + ": " + e.Problem }

func (e *CorruptError) Unwrap() error { return e.Err }

// idxTrailer is the end of an index: the pack's checksum, then the
// index's own.
const idxTrailer = 2 * trailerSize

// CheckTrailer is the cheap check that a pack is whole, made whenever a
// pack is about to be trusted: the pack's trailing checksum equals the one
// its index records. A truncated pack, a pack swapped for another, or an
// index of another pack fails; nothing is hashed.
func CheckTrailer(base string) error {
	name := filepath.Base(base)
	want, err := readTail(base+".idx", idxTrailer, 8+idxTrailer)
	if err != nil {
		return err
	}
	got, err := readTail(base+".pack", trailerSize, headerSize+trailerSize)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return &CorruptError{File: name + ".pack", Problem: "truncated or corrupt (checksum does not match its index)"}
	}
	return nil
}

// readTail reads the 20 bytes that start fromEnd bytes before the end of
// path, which must be at least minSize bytes long.
func readTail(path string, fromEnd, minSize int64) ([]byte, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &CorruptError{File: name, Problem: "missing", Err: err}
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Size() < minSize {
		return nil, &CorruptError{File: name, Problem: "truncated"}
	}
	b := make([]byte, trailerSize)
	if _, err := f.ReadAt(b, st.Size()-fromEnd); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// Verify is the full check, made once per pack: the SHA-1 of the whole
// pack equals its trailer, and its index decodes and belongs to it.
func Verify(base string) error {
	name := filepath.Base(base)
	f, err := os.Open(base + ".pack")
	if errors.Is(err, os.ErrNotExist) {
		return &CorruptError{File: name + ".pack", Problem: "missing", Err: err}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s.pack: %w", name, err)
	}
	if st.Size() < headerSize+trailerSize {
		return &CorruptError{File: name + ".pack", Problem: "truncated"}
	}
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size()-trailerSize)); err != nil {
		return fmt.Errorf("%s.pack: %w", name, err)
	}
	trailer := make([]byte, trailerSize)
	if _, err := f.ReadAt(trailer, st.Size()-trailerSize); err != nil {
		return fmt.Errorf("%s.pack: %w", name, err)
	}
	sum := h.Sum(nil)
	if !bytes.Equal(sum, trailer) {
		return &CorruptError{File: name + ".pack", Problem: "checksum mismatch: pack is corrupt"}
	}
	idx, err := readIndex(base + ".idx")
	if err != nil {
		return &CorruptError{File: name + ".idx", Problem: fmt.Sprintf("unreadable (%v)", err), Err: err}
	}
	if !bytes.Equal(idx.PackfileChecksum[:], sum) {
		return &CorruptError{File: name + ".idx", Problem: "index does not belong to this pack"}
	}
	return nil
}
