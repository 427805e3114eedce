// Package blobstore keeps inflated git blobs on disk, one file per blob,
// named by the blob's id: ROOT/blobs/ab/cdef... (the first two hex digits
// fan out into 256 directories, as git's loose objects do). The store is
// shared by every snapshot, workspace and checkout of a root, and by every
// process using the root: a blob that two commits share is inflated once,
// and a checkout copies it from here (reflink where the file system can,
// copy_file_range elsewhere).
//
// # What is served is verified
//
// A blob is written to a temporary file in ROOT/blobs/tmp while its git
// id is computed over what is written ("blob <size>\0" and the bytes); only
// if the id and size match does one rename publish it, read-only (so
// nothing unverified is ever found under its name, and concurrent writers
// of one blob publish the same bytes). Files are not synced before the
// rename: a crash may then leave a published file empty or short (the
// data of a new file reaches the disk before the size that exposes it, on
// ext4 and xfs in their default ordered modes), never one of the right
// size with other bytes; every Open checks the size it is given and
// removes a file that does not match.
//
// # Bounded
//
// Trim removes least recently used blobs until the store fits a bound in
// bytes, never one its caller says is in use (the blobs of leased
// snapshots), and unlinking never breaks a reader: an open descriptor
// keeps reading what it opened. Use is recorded in each file's atime,
// set on open when it is more than an hour old (relatime alone would move
// it once a day at most).
//
// A fill calls MaybeTrim after storing blobs, which scans (a stat per
// blob) only when the store may have outgrown its bound: the process
// counts what it publishes on top of what its last scan found, and scans
// again anyway when that scan is older than rescanEvery (other processes
// store blobs too). A store of a million blobs then costs one scan per
// fill that could matter, not one per fill.
//
// # Generation
//
// Every removal of blobs (Trim, a file found of the wrong size) moves the
// store's generation, a small file any process sharing the store reads:
// a caller remembering which blobs are stored (a fill that skips trees it
// found whole) forgets when the generation moves; so does a store whose
// directory was moved aside or made anew. A blob file removed by hand is
// not seen until then. If moving it fails, the worst outcome is a blob
// read from the packs instead of the store.
//
// # Concurrency
//
// A Store is safe for concurrent use and holds no lock of its own: every
// step is one system call on a name that only ever holds one content, so
// processes sharing the root need none either. What MaybeTrim knows of the
// store's size is an estimate kept in atomics (scanned, published).
package blobstore

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/go-git/go-git/v5/plumbing"
)

// ID is a git object id.
type ID = plumbing.Hash

// ErrNotStored means the store has no (whole) file for the blob.
var ErrNotStored = errors.New("blob not in the store")

// touchEvery is how stale a blob's atime may get before an open moves it:
// LRU at an hour's resolution, for at most one extra system call an hour
// per blob.
const touchEvery = time.Hour

// tmpMaxAge is how old a temporary file must be before Trim removes it as
// the leftover of a killed writer.
const tmpMaxAge = time.Hour

// generationName is the generation's file, beside the fan-out directories.
const generationName = "generation"

// Generation names the store's removal generation: it changes whenever a
// process removes blobs, and when the store's directory is another (moved
// aside or removed and made again). ok is false when it cannot be read
// (then nothing remembered about the store may be trusted).
func (s *Store) Generation() (gen string, ok bool) {
	var st unix.Stat_t
	if err := unix.Stat(s.dir, &st); err != nil {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(s.dir, generationName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		b = nil
	case err != nil || len(b) > 64:
		return "", false
	}
	return fmt.Sprintf("%d:%d/%s", st.Dev, st.Ino, b), true
}

// moveGeneration records that blobs were removed.
func (s *Store) moveGeneration() {
	os.WriteFile(filepath.Join(s.dir, generationName), []byte(fmt.Sprintf("%d.%d", time.Now().UnixNano(), os.Getpid())), 0o600)
}

// rescanEvery is how old the last scan may be before MaybeTrim scans
// though the bytes this process knows of fit the bound.
const rescanEvery = 10 * time.Minute

// Store is the blob store in one directory.
type Store struct {
	dir string
	tmp string
	// scanned is what the last scan (Trim, MaybeTrim, Usage) found; nil
	// before the first.
	scanned atomic.Pointer[scan]
	// published counts the bytes (rounded up to blocks) this process
	// published since that scan.
	published atomic.Int64
}

// scan is the store's size when it was last scanned.
type scan struct {
	bytes int64
	at    time.Time
}

// Open opens (creating it if needed) the store in dir.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, tmp: filepath.Join(dir, "tmp")}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) path(id ID) string {
	h := id.String()
	return filepath.Join(s.dir, h[:2], h[2:])
}

// Open returns the stored file of blob id, which must be size bytes long,
// for reading; ErrNotStored if there is none. A file of another size (see
// the package doc) is removed and reported as absent.
func (s *Store) Open(id ID, size int64) (*os.File, error) {
	fd, err := s.OpenFD(id, size)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), s.path(id)), nil
}

// OpenFD is Open as a bare descriptor, for a caller that copies many small
// blobs (an *os.File's registration and finalizer cost more than the copy).
func (s *Store) OpenFD(id ID, size int64) (int, error) {
	fd, _, err := s.openFD(id, nil, size)
	return fd, err
}

// OpenFDCheck is OpenFD for a caller to whom the blob's size costs work
// (a delta's header to inflate): want is asked only when the blob is
// there and its own record of its size (see StoredSize) is missing or
// disagrees, to check it against. A blob of another size is removed (a
// torn copy) and reported as not stored.
func (s *Store) OpenFDCheck(id ID, want func() (int64, error)) (int, int64, error) {
	return s.openFD(id, want, 0)
}

// openFD opens blob id, checking it is size bytes long, or if want is
// set, the size its record or want gives.
func (s *Store) openFD(id ID, want func() (int64, error), size int64) (int, int64, error) {
	fd, err := unix.Open(s.path(id), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) {
		return -1, 0, ErrNotStored
	}
	if err != nil {
		return -1, 0, fmt.Errorf("blob store: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("blob store: %w", err)
	}
	if want != nil {
		var ok bool
		if size, ok = recordedSizeFD(fd); !ok || size != st.Size {
			if size, err = want(); err != nil {
				unix.Close(fd)
				return -1, 0, err
			}
		}
	}
	if st.Size != size {
		unix.Close(fd)
		os.Remove(s.path(id))
		s.moveGeneration()
		return -1, 0, ErrNotStored
	}
	if time.Since(time.Unix(st.Atim.Unix())) > touchEvery {
		touch(fd)
	}
	return fd, size, nil
}

// SharesBlocksWith tells whether files created in the directory dirfd
// can share blocks with stored blobs (reflinks: btrfs, xfs, bcachefs, on
// the store's file system). Only then is filling the store before a
// checkout free; elsewhere it would write every byte twice. mkTarget runs
// the probe's creation in dirfd (a daemon passes the caller's
// credentials); nil runs it as is.
func (s *Store) SharesBlocksWith(dirfd int, mkTarget func(func() error) error) bool {
	if mkTarget == nil {
		mkTarget = func(fn func() error) error { return fn() }
	}
	return s.sharesBlocks(dirfd, mkTarget)
}

// sizeXattr records a published blob's size (StoredSize), where the file
// system keeps user xattrs (Linux).
const sizeXattr = "user.gitfs.size"

// StoredSize returns the size of blob id if the store holds it whole, as
// recorded when it was published: a file's own size cannot tell, since a
// crash may leave it short (see the package doc), but the record is
// written before the rename that publishes it and a short file
// disagrees with it. Without a record (the file system keeps no user
// xattrs, or an older gitfs wrote the file) it reports false. The answer
// costs two system calls, against inflating a delta's header from the
// packs: a new commit's sizes are mostly known here. It records the use
// as Has does.
func (s *Store) StoredSize(id ID) (int64, bool) {
	p := s.path(id)
	want, ok := recordedSize(p)
	if !ok || !present(p, want) {
		return 0, false
	}
	return want, true
}

// Has reports whether blob id is stored whole (size bytes), and records
// the use as Open does: whoever asks is about to need it.
func (s *Store) Has(id ID, size int64) bool { return present(s.path(id), size) }

// present reports whether the stored file p is size bytes long, recording
// the use (its atime) when the last one is old.
func present(p string, size int64) bool {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil || st.Size != size {
		return false
	}
	if time.Since(time.Unix(st.Atim.Unix())) > touchEvery {
		touchPath(p)
	}
	return true
}

// atimeNow is the times argument that sets atime to now, mtime unchanged.
func atimeNow() []unix.Timespec {
	return []unix.Timespec{unix.NsecToTimespec(time.Now().UnixNano()), {Nsec: utimeOmit}}
}

// Writer writes one blob into the store. Write its bytes, then Commit (or
// Abort).
type Writer struct {
	s    *Store
	id   ID
	size int64
	f    *os.File
	h    hash.Hash
	n    int64
}

// Create starts writing blob id of size bytes.
func (s *Store) Create(id ID, size int64) (*Writer, error) {
	f, err := os.CreateTemp(s.tmp, id.String()[:8]+"-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	w := &Writer{s: s, id: id, size: size, f: f, h: sha1.New()}
	fmt.Fprintf(w.h, "blob %d\x00", size)
	return w, nil
}

// Write writes and hashes p.
func (w *Writer) Write(p []byte) (int, error) {
	if w.n+int64(len(p)) > w.size {
		return 0, fmt.Errorf("blob %s: longer than its %d bytes", w.id, w.size)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// File is the temporary file being written, for a caller that copies from
// it before it is published (a checkout that fills the store as it goes).
func (w *Writer) File() *os.File { return w.f }

// Commit checks that what was written is blob id, size bytes long, and
// publishes it. The file stays open for reading at File() until Close.
func (w *Writer) Commit() error {
	var got ID
	copy(got[:], w.h.Sum(nil))
	switch {
	case w.n != w.size:
		w.Abort()
		return fmt.Errorf("blob %s: %d bytes written, expected %d", w.id, w.n, w.size)
	case got != w.id:
		w.Abort()
		return fmt.Errorf("blob %s: bytes hash to %s: refused", w.id, got)
	}
	// Best effort (StoredSize); before the chmod, since writing a user
	// xattr takes write permission on the file.
	recordSize(int(w.f.Fd()), w.size)
	if err := w.f.Chmod(0o444); err != nil {
		w.Abort()
		return fmt.Errorf("blob store: %w", err)
	}
	target := w.s.path(w.id)
	err := os.Rename(w.f.Name(), target)
	if errors.Is(err, os.ErrNotExist) {
		// The fan-out directory is made on first use.
		if err = os.Mkdir(filepath.Dir(target), 0o700); err == nil || errors.Is(err, os.ErrExist) {
			err = os.Rename(w.f.Name(), target)
		}
	}
	if err != nil {
		w.Abort()
		return fmt.Errorf("blob store: publish %s: %w", w.id, err)
	}
	w.s.published.Add((w.size + blockSize - 1) / blockSize * blockSize)
	return nil
}

// blockSize is the allocation unit the store's files are assumed to take
// between scans (they measure st_blocks).
const blockSize = 4096

// Abort drops what was written.
func (w *Writer) Abort() {
	os.Remove(w.f.Name())
	w.f.Close()
}

// Close closes the file after Commit.
func (w *Writer) Close() error { return w.f.Close() }

// Put stores blob id of size bytes read from r, verified.
func (s *Store) Put(id ID, size int64, r io.Reader) error {
	w, err := s.Create(id, size)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Abort()
		return fmt.Errorf("blob %s: %w", id, err)
	}
	if err := w.Commit(); err != nil {
		return err
	}
	return w.Close()
}

// Usage is what the store holds: its blobs' bytes (allocated on disk) and
// their number.
type Usage struct {
	Bytes int64
	Blobs int
}

// entry is one stored blob as Trim sees it.
type entry struct {
	path  string
	id    ID
	bytes int64
	used  int64 // atime, ns
}

// scan lists every stored blob, and removes temporary files older than
// tmpMaxAge and files of the older flat layout (ROOT/blobs/<40 hex>).
func (s *Store) scan() ([]entry, error) {
	start := time.Now()
	out, err := s.scanEntries()
	if err == nil {
		var total int64
		for _, e := range out {
			total += e.bytes
		}
		// Publications during the scan may be counted twice: the estimate
		// errs high, toward an early scan.
		s.published.Store(0)
		s.scanned.Store(&scan{bytes: total, at: start})
	}
	return out, err
}

func (s *Store) scanEntries() ([]entry, error) {
	top, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	var out []entry
	for _, d := range top {
		name := d.Name()
		switch {
		case name == "tmp":
			tmps, _ := os.ReadDir(s.tmp)
			for _, t := range tmps {
				if fi, err := t.Info(); err == nil && time.Since(fi.ModTime()) > tmpMaxAge {
					os.Remove(filepath.Join(s.tmp, t.Name()))
				}
			}
			continue
		case len(name) != 2 || !d.IsDir():
			if !d.IsDir() && isHex(name) && len(name) == 40 {
				os.Remove(filepath.Join(s.dir, name)) // the flat layout's large blobs
			}
			continue
		}
		sub := filepath.Join(s.dir, name)
		files, err := os.ReadDir(sub)
		if err != nil {
			continue
		}
		for _, f := range files {
			var st unix.Stat_t
			p := filepath.Join(sub, f.Name())
			b, err := hex.DecodeString(name + f.Name())
			if err != nil || len(b) != len(ID{}) || unix.Lstat(p, &st) != nil {
				continue
			}
			e := entry{path: p, bytes: st.Blocks * 512, used: st.Atim.Nano()}
			copy(e.id[:], b)
			out = append(out, e)
		}
	}
	return out, nil
}

// Usage sums the store's blobs.
func (s *Store) Usage() (Usage, error) {
	es, err := s.scan()
	var u Usage
	for _, e := range es {
		u.Bytes += e.bytes
		u.Blobs++
	}
	return u, err
}

// TrimResult is what Trim removed and what is left.
type TrimResult struct {
	Removed   int
	Freed     int64
	Left      Usage
	KeptInUse int64 // bytes over the bound that inUse kept
}

// Trim removes the least recently used blobs until the store holds at
// most limit bytes, skipping any blob inUse reports (nil: none). If the
// blobs in use alone exceed limit, they all stay.
func (s *Store) Trim(limit int64, inUse func(ID) bool) (TrimResult, error) {
	es, err := s.scan()
	if err != nil {
		return TrimResult{}, err
	}
	var r TrimResult
	for _, e := range es {
		r.Left.Bytes += e.bytes
		r.Left.Blobs++
	}
	if r.Left.Bytes <= limit {
		return r, nil
	}
	sort.Slice(es, func(i, j int) bool { return es[i].used < es[j].used })
	defer func() {
		if r.Removed > 0 {
			s.moveGeneration()
		}
	}()
	for _, e := range es {
		if r.Left.Bytes <= limit {
			break
		}
		if inUse != nil && inUse(e.id) {
			continue
		}
		if err := os.Remove(e.path); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return r, fmt.Errorf("blob store: trim: %w", err)
		}
		r.Removed++
		r.Freed += e.bytes
		r.Left.Bytes -= e.bytes
		r.Left.Blobs--
	}
	if r.Left.Bytes > limit {
		r.KeptInUse = r.Left.Bytes - limit
	}
	if last := s.scanned.Load(); last != nil {
		s.scanned.Store(&scan{bytes: r.Left.Bytes, at: last.at})
	}
	return r, nil
}

// MaybeTrim is Trim for a caller that has just stored blobs: it scans
// the store only when it may hold more than limit bytes, by what this
// process knows (the last scan plus what it published since), or when
// that scan is older than rescanEvery. scanned tells whether it did; if
// not, r.Left.Bytes is that estimate and r.Left.Blobs is unknown (0).
func (s *Store) MaybeTrim(limit int64, inUse func(ID) bool) (r TrimResult, scanned bool, err error) {
	if last := s.scanned.Load(); last != nil && time.Since(last.at) < rescanEvery {
		if known := last.bytes + s.published.Load(); known <= limit {
			return TrimResult{Left: Usage{Bytes: known}}, false, nil
		}
	}
	r, err = s.Trim(limit, inUse)
	return r, true, err
}

func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// ParseSize parses a bound in bytes as the CLI takes it: a number with an
// optional K, M, G or T (powers of 1024, an optional "iB" or "B" after).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("size %q: want bytes, or a number with K, M, G or T (e.g. 20G)", s)
	}
	return int64(v * float64(mult)), nil
}

// CleanTemps removes the temporary files of writers that are gone (killed
// mid-blob): each is named after its process, which no longer exists.
// A file of a live process, or one whose name says no process, is left
// (Trim removes those once they are old).
func (s *Store) CleanTemps() {
	tmps, _ := os.ReadDir(s.tmp)
	for _, t := range tmps {
		parts := strings.SplitN(t.Name(), "-", 3)
		if len(parts) != 3 {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			os.Remove(filepath.Join(s.tmp, t.Name()))
		}
	}
}
