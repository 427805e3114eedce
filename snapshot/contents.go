package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// A snapshot's contents file holds every blob of its tree inflated, once,
// so that later checkouts and reads copy bytes instead of inflating them:
// inflating with Go's zlib costs about as much CPU as git's whole checkout,
// and a checkout from this file is create + copy_file_range per file.
// It is derived data, made on demand (by the first checkout, or by the
// daemon for its workspaces), published by one rename and removed with
// the snapshot; it roughly doubles a snapshot's disk use.
//
// Layout: the blobs' bytes, each once, in pack order (so that every delta
// base is inflated once and found in the cache by the deltas after it); then the index, one record per blob sorted by id; then a
// trailer. The index's SHA-256 in the trailer catches a torn or truncated
// file; the blob bytes themselves are trusted as the pinned packs are.
const (
	contentsName     = "contents"
	contentsMagic    = "GFSCNT01"
	contentsRecord   = 20 + 8 + 8 // id, offset, size
	contentsTrailer  = 8 + 8 + 8 + sha256.Size
	contentsBatchMax = 256 << 10 // small blobs are gathered into writes of this size
)

// ErrNoContents means the snapshot's contents file has not been made.
var ErrNoContents = errors.New("snapshot contents not inflated")

// ErrContentsBusy means another process is making the contents file.
var ErrContentsBusy = errors.New("snapshot contents being inflated by another process")

// Contents is random access to a snapshot's inflated blobs. Whoever gets
// one from Snapshot.Contents or Snapshot.Inflate closes it when done.
type Contents struct {
	f     *os.File
	index []byte // records sorted by id
	end   int64  // where the blob bytes end
	// refs counts the snapshot's hold and every open blob reading f: a
	// blob stays readable after the snapshot is released (open files of a
	// workspace that moved to another commit read their old bytes).
	refs atomic.Int64
	// published, when not nil, is closed once an early Inflate has synced
	// and published the file (or given up).
	published chan struct{}
}

func (c *Contents) hold() { c.refs.Add(1) }

func (c *Contents) drop() {
	if c.refs.Add(-1) == 0 {
		c.f.Close()
	}
}

// File is the contents file, for copy_file_range and pread at the offsets
// Locate gives, until Close. It must not be closed itself.
func (c *Contents) File() *os.File { return c.f }

// Close releases the caller's hold on the file, after waiting for an
// early Inflate's background publish.
func (c *Contents) Close() error {
	if c.published != nil {
		<-c.published
	}
	c.drop()
	return nil
}

// Blobs is the number of distinct blobs in the file.
func (c *Contents) Blobs() int { return len(c.index) / contentsRecord }

// Locate returns where blob id's bytes are in File.
func (c *Contents) Locate(id ID) (off, size int64, ok bool) {
	n := c.Blobs()
	i := sort.Search(n, func(i int) bool {
		return bytes.Compare(c.index[i*contentsRecord:i*contentsRecord+20], id[:]) >= 0
	})
	if i == n {
		return 0, 0, false
	}
	r := c.index[i*contentsRecord : (i+1)*contentsRecord]
	if !bytes.Equal(r[:20], id[:]) {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(r[20:])), int64(binary.BigEndian.Uint64(r[28:])), true
}

// close drops the snapshot's own hold.
func (c *Contents) close() {
	if c != nil {
		c.drop()
	}
}

// openContents opens and checks a published contents file.
func openContents(path string) (*Contents, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoContents
	}
	if err != nil {
		return nil, err
	}
	c, err := readContents(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func readContents(f *os.File) (*Contents, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < contentsTrailer {
		return nil, corruptf("contents file truncated")
	}
	var tr [contentsTrailer]byte
	if _, err := f.ReadAt(tr[:], st.Size()-contentsTrailer); err != nil {
		return nil, err
	}
	if string(tr[:8]) != contentsMagic {
		return nil, corruptf("contents file: bad trailer")
	}
	end := int64(binary.BigEndian.Uint64(tr[8:]))
	count := int64(binary.BigEndian.Uint64(tr[16:]))
	if count < 0 || count > 1<<32 || end < 0 || end+count*contentsRecord+contentsTrailer != st.Size() {
		return nil, corruptf("contents file: size does not match its trailer")
	}
	index := make([]byte, count*contentsRecord)
	if _, err := f.ReadAt(index, end); err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(index); !bytes.Equal(sum[:], tr[24:]) {
		return nil, corruptf("contents file: index checksum mismatch")
	}
	for i := int64(0); i < count; i++ {
		r := index[i*contentsRecord : (i+1)*contentsRecord]
		if i > 0 && bytes.Compare(index[(i-1)*contentsRecord:(i-1)*contentsRecord+20], r[:20]) >= 0 {
			return nil, corruptf("contents file: index not sorted")
		}
		off, size := binary.BigEndian.Uint64(r[20:]), binary.BigEndian.Uint64(r[28:])
		if off > uint64(end) || size > uint64(end)-off {
			return nil, corruptf("contents file: blob out of range")
		}
	}
	c := &Contents{f: f, index: index, end: end}
	c.refs.Store(1)
	return c, nil
}

// Contents returns the snapshot's contents file, or ErrNoContents if it has
// not been made (see Inflate). The caller closes it.
func (s *Snapshot) Contents() (*Contents, error) {
	c, err := s.loadContents()
	if err != nil {
		return nil, err
	}
	c.hold()
	return c, nil
}

// loadContents returns the snapshot's own Contents, opening it on first use.
func (s *Snapshot) loadContents() (*Contents, error) {
	s.contentsMu.Lock()
	defer s.contentsMu.Unlock()
	if s.contents != nil {
		return s.contents, nil
	}
	s.contentsLooked = time.Now()
	c, err := openContents(filepath.Join(s.dir, contentsName))
	if isCorrupt(err) {
		// Derived data: say so and let it be made again.
		s.store.log.Warn("snapshot contents file is damaged: removing it", "commit", s.meta.Commit, "problem", err.Error())
		if rmErr := s.removeContents(); rmErr != nil {
			return nil, fmt.Errorf("snapshot %s: %w (and removing it: %v)", s.meta.Commit, err, rmErr)
		}
		return nil, ErrNoContents
	}
	if err != nil {
		return nil, err
	}
	s.contents = c
	return c, nil
}

// contentsRecheck is how long the read path trusts that a snapshot has no
// contents file before looking again (one may be made by a checkout).
const contentsRecheck = 10 * time.Second

// presentContents returns the contents file if it exists, for the read
// path: it looks on disk at most every contentsRecheck, and never inflates.
func (s *Snapshot) presentContents() *Contents {
	s.contentsMu.Lock()
	c, looked := s.contents, s.contentsLooked
	s.contentsMu.Unlock()
	if c != nil || time.Since(looked) < contentsRecheck {
		return c
	}
	c, _ = s.loadContents()
	return c
}

// removeContents removes a damaged contents file under the contents lock,
// unless another process holds it (then it is being replaced anyway).
func (s *Snapshot) removeContents() error {
	lock, err := locks.TryExclusive(s.store.contentsLockPath(s.meta.Commit))
	if errors.Is(err, locks.ErrWouldBlock) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if err := os.Remove(filepath.Join(s.dir, contentsName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// InflateOptions tune Inflate.
type InflateOptions struct {
	Workers  int           // goroutines inflating; at least 1
	Progress *atomic.Int64 // if set, bytes inflated so far are added here
	// Early returns as soon as every blob is written: the file is synced
	// and published in the background while the caller reads it, and the
	// returned Contents' Close waits for that.
	Early bool
}

// Inflate makes the snapshot's contents file if it does not exist yet and
// returns it; the caller closes it. If another process is making it, it
// returns ErrContentsBusy at once rather than wait: callers can read from
// the packs meanwhile.
func (s *Snapshot) Inflate(ctx context.Context, opts InflateOptions) (*Contents, error) {
	if c, err := s.Contents(); err == nil || !errors.Is(err, ErrNoContents) {
		return c, err
	}
	lock, err := locks.TryExclusive(s.store.contentsLockPath(s.meta.Commit))
	if errors.Is(err, locks.ErrWouldBlock) {
		return nil, ErrContentsBusy
	}
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			lock.Unlock()
		}
	}()
	if c, err := s.Contents(); err == nil || !errors.Is(err, ErrNoContents) {
		return c, err // made by another process before we got the lock
	}
	// Leftovers of a killed run: we hold the lock, so nobody is writing them.
	if old, _ := filepath.Glob(filepath.Join(s.dir, contentsName+locks.TempMarker+"*")); old != nil {
		for _, p := range old {
			os.Remove(p)
		}
	}
	ids, err := s.blobIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: inflate: %w", s.meta.Commit, err)
	}
	s.packs.SortByPackOrder(ids)
	tmp, err := os.CreateTemp(s.dir, contentsName+locks.TempMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: inflate: %w", s.meta.Commit, err)
	}
	start := time.Now()
	size, err := s.writeContents(ctx, tmp, ids, opts)
	var c *Contents
	if err == nil {
		c, err = readContents(tmp)
	}
	if err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("snapshot %s: inflate: %w", s.meta.Commit, err)
	}
	// The file is complete in the page cache and this process may read it
	// now. Others may only once it is on disk and published: a file that
	// read back as zeros after a crash would be served as blob bytes.
	publish := func() error {
		err := tmp.Sync()
		if err == nil {
			err = tmp.Chmod(0o444)
		}
		if err == nil {
			err = os.Rename(tmp.Name(), filepath.Join(s.dir, contentsName))
		}
		if err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("snapshot %s: publish contents: %w", s.meta.Commit, err)
		}
		if d, err := os.Open(s.dir); err == nil {
			d.Sync()
			d.Close()
		}
		s.store.log.Info("snapshot contents inflated", "commit", s.meta.Commit, "blobs", len(ids),
			"bytes", size, "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	if !opts.Early {
		if err := publish(); err != nil {
			c.close()
			return nil, err
		}
	} else {
		c.published = make(chan struct{})
		locked = false
		go func() {
			defer close(c.published)
			defer lock.Unlock()
			if err := publish(); err != nil {
				s.store.log.Warn("snapshot contents not kept", "commit", s.meta.Commit, "err", err)
			}
		}()
	}
	s.contentsMu.Lock()
	if s.contents == nil {
		s.contents = c // the snapshot's hold
	} else {
		c.close() // impossible under the lock; keep the first
		c = s.contents
	}
	s.contentsMu.Unlock()
	c.hold()
	return c, nil
}

// blobIDs lists every distinct blob of the tree, in tree order. Each
// distinct subtree is walked once: a tree that repeats one subtree at many
// places must cost its size, not the number of paths it expands to.
func (s *Snapshot) blobIDs(ctx context.Context) ([]ID, error) {
	seen := make(map[ID]struct{})
	walked := make(map[ID]struct{})
	var ids []ID
	var walk func(tree ID) error
	walk = func(tree ID) error {
		if _, ok := walked[tree]; ok {
			return nil
		}
		walked[tree] = struct{}{}
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := s.Tree(tree)
		if err != nil {
			return err
		}
		for _, e := range entries {
			switch e.Kind {
			case Dir:
				if err := walk(e.ID); err != nil {
					return err
				}
			case File, Executable, Symlink:
				if _, ok := seen[e.ID]; !ok {
					seen[e.ID] = struct{}{}
					ids = append(ids, e.ID)
				}
			}
		}
		return nil
	}
	return ids, walk(s.tree)
}

// writeContents inflates ids into f with opts.Workers goroutines, then
// appends the index and trailer; it returns the file's size.
// Workers take ids in small
// runs, so the file stays close to the order of ids, and gather small blobs into
// one write.
func (s *Snapshot) writeContents(ctx context.Context, f *os.File, ids []ID, opts InflateOptions) (int64, error) {
	workers := max(1, opts.Workers)
	const run = 16
	var next atomic.Int64 // index into ids of the next run to take
	var end atomic.Int64  // end of the data reserved so far
	records := make([][]byte, workers)
	g, ctx := errgroup.WithContext(ctx)
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			iw := &contentsWriter{s: s, f: f, end: &end, progress: opts.Progress, buf: make([]byte, 0, contentsBatchMax)}
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				lo := int(next.Add(run)) - run
				if lo >= len(ids) {
					break
				}
				for _, id := range ids[lo:min(lo+run, len(ids))] {
					if err := iw.add(id); err != nil {
						return err
					}
				}
			}
			if err := iw.flush(); err != nil {
				return err
			}
			records[w] = iw.records
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	index := bytes.Join(records, nil)
	n := len(index) / contentsRecord
	sort.Sort(recordSort{index, make([]byte, contentsRecord)})
	for i := 1; i < n; i++ {
		if bytes.Equal(index[(i-1)*contentsRecord:(i-1)*contentsRecord+20], index[i*contentsRecord:i*contentsRecord+20]) {
			return 0, fmt.Errorf("internal error: blob %x inflated twice", index[i*contentsRecord:i*contentsRecord+20])
		}
	}
	dataEnd := end.Load()
	var tr [contentsTrailer]byte
	copy(tr[:], contentsMagic)
	binary.BigEndian.PutUint64(tr[8:], uint64(dataEnd))
	binary.BigEndian.PutUint64(tr[16:], uint64(n))
	sum := sha256.Sum256(index)
	copy(tr[24:], sum[:])
	if _, err := f.WriteAt(append(index, tr[:]...), dataEnd); err != nil {
		return 0, err
	}
	return dataEnd + int64(len(index)) + contentsTrailer, nil
}

// contentsWriter is one inflating goroutine's state.
type contentsWriter struct {
	s        *Snapshot
	f        *os.File
	end      *atomic.Int64
	progress *atomic.Int64
	buf      []byte // small blobs gathered for one write
	pending  []int  // records (by index) whose offsets are relative to buf
	records  []byte
}

func (w *contentsWriter) record(id ID, off, size int64) {
	var r [contentsRecord]byte
	copy(r[:20], id[:])
	binary.BigEndian.PutUint64(r[20:], uint64(off))
	binary.BigEndian.PutUint64(r[28:], uint64(size))
	w.records = append(w.records, r[:]...)
}

func (w *contentsWriter) add(id ID) error {
	rc, size, err := w.s.packs.OpenBlobCaching(id)
	if err != nil {
		return err
	}
	defer rc.Close()
	if size > int64(cap(w.buf)-len(w.buf)) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if size <= int64(cap(w.buf)) {
		start := len(w.buf)
		w.buf = w.buf[:start+int(size)]
		if _, err := io.ReadFull(rc, w.buf[start:]); err != nil {
			return fmt.Errorf("blob %s: %w", id, err)
		}
		if err := expectEOF(rc, id); err != nil {
			return err
		}
		w.pending = append(w.pending, len(w.records)/contentsRecord)
		w.record(id, int64(start), size)
		return nil
	}
	// A large blob: its own range, streamed through buf.
	off := w.end.Add(size) - size
	chunk := w.buf[:cap(w.buf)]
	var done int64
	for done < size {
		n, err := io.ReadFull(rc, chunk[:min(int64(len(chunk)), size-done)])
		if n > 0 {
			if _, werr := w.f.WriteAt(chunk[:n], off+done); werr != nil {
				return werr
			}
			done += int64(n)
			if w.progress != nil {
				w.progress.Add(int64(n))
			}
		}
		if err != nil {
			return fmt.Errorf("blob %s: %w", id, err)
		}
	}
	if err := expectEOF(rc, id); err != nil {
		return err
	}
	w.record(id, off, size)
	return nil
}

// flush writes the gathered small blobs in one range and fixes their
// records' offsets.
func (w *contentsWriter) flush() error {
	if len(w.buf) == 0 {
		w.pending = w.pending[:0]
		return nil
	}
	off := w.end.Add(int64(len(w.buf))) - int64(len(w.buf))
	if _, err := w.f.WriteAt(w.buf, off); err != nil {
		return err
	}
	for _, i := range w.pending {
		r := w.records[i*contentsRecord : (i+1)*contentsRecord]
		binary.BigEndian.PutUint64(r[20:], binary.BigEndian.Uint64(r[20:])+uint64(off))
	}
	if w.progress != nil {
		w.progress.Add(int64(len(w.buf)))
	}
	w.buf, w.pending = w.buf[:0], w.pending[:0]
	return nil
}

// expectEOF checks that a blob stream has nothing beyond its size.
func expectEOF(r io.Reader, id ID) error {
	var one [1]byte
	n, err := r.Read(one[:])
	if n > 0 {
		return fmt.Errorf("blob %s: longer than its size", id)
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("blob %s: %w", id, err)
	}
	return nil
}

// recordSort sorts index records by id in place.
type recordSort struct {
	b   []byte
	tmp []byte
}

func (r recordSort) Len() int { return len(r.b) / contentsRecord }
func (r recordSort) Less(i, j int) bool {
	return bytes.Compare(r.b[i*contentsRecord:i*contentsRecord+20], r.b[j*contentsRecord:j*contentsRecord+20]) < 0
}
func (r recordSort) Swap(i, j int) {
	a, b := r.b[i*contentsRecord:(i+1)*contentsRecord], r.b[j*contentsRecord:(j+1)*contentsRecord]
	copy(r.tmp, a)
	copy(a, b)
	copy(b, r.tmp)
}

// DropContents removes the contents file of every snapshot, returning how
// many bytes it freed. Open readers keep reading what they opened; the
// next checkout of each commit inflates it again. A file being made is
// left alone.
func (s *Store) DropContents() (int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range entries {
		commit := e.Name()
		if !mirror.IsFullSHA(commit) {
			continue
		}
		path := filepath.Join(s.snapDir(commit), contentsName)
		fi, err := os.Stat(path)
		if err != nil {
			continue
		}
		lock, err := locks.TryExclusive(s.contentsLockPath(commit))
		if errors.Is(err, locks.ErrWouldBlock) {
			continue
		}
		if err != nil {
			return freed, err
		}
		err = os.Remove(path)
		lock.Unlock()
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return freed, fmt.Errorf("snapshot %s: drop contents: %w", commit, err)
		}
		freed += fi.Size()
	}
	// Open snapshots look for the file again when they next need it.
	s.mu.Lock()
	for _, snap := range s.open {
		snap.contentsMu.Lock()
		snap.contents.close()
		snap.contents, snap.contentsLooked = nil, time.Time{}
		snap.contentsMu.Unlock()
	}
	s.mu.Unlock()
	return freed, nil
}

// contentsLockPath is the flock held while a snapshot's contents file is
// made or removed.
func (s *Store) contentsLockPath(commit string) string {
	return filepath.Join(s.lockDir, "snapshot-"+commit+".contents")
}
