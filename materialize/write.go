package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/asuser"
	"github.com/gitfs/gitfs/snapshot"
)

// statData is what git's index records of a written entry, so that
// `git status` finds it clean by stat alone.
type statData struct {
	ctime, mtime unix.Timespec
	dev, ino     uint64
	uid, gid     uint32
	size         int64
}

func statOf(st *unix.Stat_t) statData {
	return statData{ctime: st.Ctim, mtime: st.Mtim, dev: uint64(st.Dev), ino: st.Ino, uid: st.Uid, gid: st.Gid, size: st.Size}
}

// writer carries out a plan under rootfd.
type writer struct {
	src    source
	stored storeSource // the blob store, filled for this commit; nil: inflate from the packs
	rootfd int
	p      *plan
	git    bool
	times  []unix.Timespec // atime (left alone), mtime
	// as is whose credentials every creating call runs with (nil: the
	// process's). A switch costs ~12µs, several file creations' worth, so
	// calls are wrapped a batch at a time; the blobs are read and written
	// outside, with the daemon's credentials (a write through a descriptor
	// opened as the user checks nothing more).
	as *asuser.User

	files, bytes atomic.Int64
	fileStats    []statData // by index in p.files, when git
	linkStats    []statData // by index in p.links, when git

	mu       sync.Mutex
	later    []int    // files that met EEXIST: another name folded onto theirs
	collided []string // paths overwritten on a case-insensitive target
}

func newWriter(src source, rootfd int, p *plan, git bool, mtime time.Time) *writer {
	w := &writer{
		src: src, rootfd: rootfd, p: p, git: git,
		times: []unix.Timespec{{Nsec: utimeOmit}, unix.NsecToTimespec(mtime.UnixNano())},
	}
	if git {
		w.fileStats = make([]statData, len(p.files))
		w.linkStats = make([]statData, len(p.links))
	}
	return w
}

func (w *writer) run(ctx context.Context, workers int) error {
	if err := w.mkdirs(ctx); err != nil {
		return err
	}
	if err := w.writeFiles(ctx, workers); err != nil {
		return err
	}
	if err := w.writeCollided(ctx); err != nil {
		return err
	}
	return w.writeLinks(ctx)
}

// mkdirs creates the plan's directories in order (parents first, depth
// first), each with mkdirat relative to its parent's descriptor; the
// descriptors of the current path are kept on a stack. It reads nothing
// from the snapshot, so it runs as w.as in one go.
func (w *writer) mkdirs(ctx context.Context) error {
	return w.as.Do(func() error { return w.mkdirsHere(ctx) })
}

func (w *writer) mkdirsHere(ctx context.Context) error {
	type open struct {
		dir int32
		fd  int
	}
	stack := []open{{dir: 0, fd: w.rootfd}}
	defer func() {
		for _, o := range stack[1:] {
			unix.Close(o.fd)
		}
	}()
	for i := 1; i < len(w.p.dirs); i++ {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		d := &w.p.dirs[i]
		for stack[len(stack)-1].dir != d.parent {
			unix.Close(stack[len(stack)-1].fd)
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return fmt.Errorf("internal error: directory %q listed before its parent", d.path)
			}
		}
		parent := stack[len(stack)-1].fd
		if err := unix.Mkdirat(parent, d.name, 0o777); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return refuse(d.path, ruleExistsLater)
			}
			return fmt.Errorf("create directory %q: %w", d.path, err)
		}
		if d.gitlink {
			continue // gitlinks stay empty: nothing is created inside
		}
		fd, err := unix.Openat(parent, d.name, oPath|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open directory %q: %w", d.path, err)
		}
		stack = append(stack, open{dir: int32(i), fd: fd})
	}
	return nil
}

// span is one worker's contiguous range of the file list; the owner
// takes from the front, idle workers steal from the back.
type span struct {
	mu     sync.Mutex
	lo, hi int
}

const batch = 16 // files taken at once: small enough to balance, large enough to stay in one directory

// asBatch is the files taken at once when writing as another user: each
// batch costs one switch of credentials (~12µs, six credential changes in
// the kernel), which at 16 files made a 20k-file checkout on tmpfs ~6%
// slower; at 64, ~2%. Balance hardly suffers: idle workers still steal.
const asBatch = 64

func (s *span) front(batch int) (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo := s.lo
	hi := min(lo+batch, s.hi)
	s.lo = hi
	return lo, hi
}

func (s *span) back(batch int) (int, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hi := s.hi
	lo := max(hi-batch, s.lo)
	s.hi = lo
	return lo, hi, s.hi - s.lo
}

func (s *span) remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hi - s.lo
}

// writeFiles writes every non-collided regular file with `workers`
// goroutines, each owning a contiguous span of the sorted list.
func (w *writer) writeFiles(ctx context.Context, workers int) error {
	n := len(w.p.files)
	if n == 0 {
		return nil
	}
	workers = max(1, min(workers, (n+batch-1)/batch))
	spans := make([]*span, workers)
	for i := range spans {
		spans[i] = &span{lo: i * n / workers, hi: (i + 1) * n / workers}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			fw := &fileWorker{ctx: ctx, w: w, dir: -1, dirfd: -1, buf: make([]byte, 256<<10), opened: make([]openFile, 0, asBatch)}
			defer fw.closeDir()
			err := fw.loop(ctx, spans, i)
			if cerr := fw.closeBatch(); err == nil {
				err = cerr
			}
			if err != nil {
				errs[i] = err
				cancel()
			}
		}(i)
	}
	wg.Wait()
	// The first real error, not the cancellations it caused in others.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

type fileWorker struct {
	ctx      context.Context
	w        *writer
	dir      int32 // directory whose descriptor dirfd is
	dirfd    int
	buf      []byte
	opened   []openFile // created by the current batch, not yet filled
	contents []content  // where each of opened gets its bytes
	// batch is the worker's git cat-file, started at the first blob the
	// store lacks; noBatch once that was tried (or is not to be).
	batch   *snapshot.Batch
	noBatch bool
}

type openFile struct {
	i  int // index in p.files
	fd int
}

func (fw *fileWorker) closeDir() {
	if fw.dirfd >= 0 && fw.dirfd != fw.w.rootfd {
		unix.Close(fw.dirfd)
	}
	fw.dir, fw.dirfd = -1, -1
}

func (fw *fileWorker) loop(ctx context.Context, spans []*span, own int) error {
	take := batch
	if fw.w.as != nil {
		take = asBatch
	}
	for {
		lo, hi := spans[own].front(take)
		if lo >= hi {
			// Steal from whichever span has the most left.
			best, most := -1, 0
			for j, s := range spans {
				if r := s.remaining(); r > most {
					best, most = j, r
				}
			}
			if best < 0 {
				return nil
			}
			lo, hi, _ = spans[best].back(take)
			if lo >= hi {
				continue
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fw.writeBatch(lo, hi); err != nil {
			return err
		}
	}
}

func (fw *fileWorker) dirFD(dir int32) (int, error) {
	if dir == fw.dir {
		return fw.dirfd, nil
	}
	fw.closeDir()
	if dir == 0 {
		fw.dir, fw.dirfd = 0, fw.w.rootfd
		return fw.dirfd, nil
	}
	fd, err := openDir(fw.w.rootfd, fw.w.p.dirs[dir].path)
	if err != nil {
		return -1, fmt.Errorf("open directory %q: %w", fw.w.p.dirs[dir].path, err)
	}
	fw.dir, fw.dirfd = dir, fd
	return fd, nil
}

func fileMode(k snapshot.Kind) uint32 {
	if k == snapshot.Executable {
		return 0o777 // the umask applies, as for git
	}
	return 0o666
}

// writeBatch creates files lo..hi-1 exclusively, all in one switch to
// w.as, then streams their blobs into them with the daemon's credentials:
// where each file's bytes come from is settled first, so that the blobs
// to inflate are asked of git at once and git inflates them while the
// first ones are written.
func (fw *fileWorker) writeBatch(lo, hi int) error {
	err := fw.w.as.Do(func() error {
		for i := lo; i < hi; i++ {
			if err := fw.create(i); err != nil {
				return err
			}
		}
		return nil
	})
	fw.contents = fw.contents[:0]
	var asked []snapshot.ID
	for _, o := range fw.opened {
		var c content
		if err == nil {
			c, err = fw.source(o.i)
			if c.batch {
				asked = append(asked, fw.w.p.files[o.i].id)
			}
		}
		fw.contents = append(fw.contents, c)
	}
	if err == nil && len(asked) > 0 && fw.batch.Request(asked...) != nil {
		fw.closeBatch() // git is gone: Go inflates from here on (fill)
	}
	for k, o := range fw.opened {
		if err != nil {
			unix.Close(o.fd) // the temp dir goes with the failure
			fw.contents[k].release()
			continue
		}
		err = fw.fill(o.fd, o.i, fw.contents[k])
	}
	fw.opened = fw.opened[:0]
	return err
}

// create creates file i exclusively and queues it for filling.
func (fw *fileWorker) create(i int) error {
	w := fw.w
	f := &w.p.files[i]
	if f.collided {
		return nil // written sequentially afterwards
	}
	dirfd, err := fw.dirFD(f.dir)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(dirfd, f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, fileMode(f.kind))
	if errors.Is(err, unix.EEXIST) {
		// The file system folded another name of this directory onto
		// this one (a normalization the plan does not model): finish it
		// sequentially, like the collisions the plan found.
		w.mu.Lock()
		w.later = append(w.later, i)
		w.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %q: %w", w.p.filePath(f), err)
	}
	fw.opened = append(fw.opened, openFile{i: i, fd: fd})
	return nil
}

// content is where a file's bytes come from.
type content struct {
	converted snapshot.Blob // what .gitattributes make of the blob
	stored    int           // descriptor of the blob store's copy + 1; 0: none (the zero value holds nothing)
	size      int64         // of converted or stored
	batch     bool          // the next answer of the worker's git cat-file
}

func (c content) release() {
	if c.converted != nil {
		c.converted.Close()
	}
	if c.stored > 0 {
		unix.Close(c.stored - 1)
	}
}

// source settles where file i's bytes come from: its conversion, the
// blob store, the worker's git cat-file, or the packs through Go.
func (fw *fileWorker) source(i int) (content, error) {
	w := fw.w
	f := &w.p.files[i]
	if b, ok, err := w.convertedBlob(f); err != nil {
		return content{}, fmt.Errorf("read blob of %q: %w", w.p.filePath(f), err)
	} else if ok {
		return content{converted: b, size: b.Size()}, nil
	}
	if src, size, ok := w.storedFD(f.id); ok {
		return content{stored: src + 1, size: size}, nil
	}
	return content{batch: fw.openBatch()}, nil
}

// openBatch tells whether the worker has a git cat-file to inflate with,
// starting one the first time (never again once that failed: then Go
// inflates).
func (fw *fileWorker) openBatch() bool {
	if fw.batch != nil {
		return true
	}
	if fw.noBatch {
		return false
	}
	fw.noBatch = true
	bs, ok := fw.w.src.(batchSource)
	if !ok {
		return false
	}
	b, err := bs.OpenBatch(fw.ctx)
	if err != nil {
		return false
	}
	fw.batch = b
	return true
}

func (fw *fileWorker) closeBatch() error {
	if fw.batch == nil {
		return nil
	}
	err := fw.batch.Close()
	fw.batch = nil
	return err
}

// fillFrom fills file i, wherever its bytes are, but never from a batch.
func (fw *fileWorker) fillFrom(fd int, i int) error {
	fw.noBatch = true
	c, err := fw.source(i)
	if err != nil {
		unix.Close(fd)
		return err
	}
	return fw.fill(fd, i, c)
}

// fill writes file i's bytes from c into fd, sets its time, records its
// stat data and closes fd.
func (fw *fileWorker) fill(fd int, i int, c content) (err error) {
	w := fw.w
	f := &w.p.files[i]
	defer func() {
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = fmt.Errorf("write %q: close: %w", w.p.filePath(f), cerr)
		}
	}()
	var n, size int64
	switch {
	case c.converted != nil:
		size = c.size
		n, err = copyToFD(fd, io.NewSectionReader(c.converted, 0, size), fw.buf)
		c.converted.Close()
	case c.stored > 0:
		size = c.size
		n, err = copyFile(fd, c.stored-1, size, fw.buf)
		unix.Close(c.stored - 1)
	case c.batch && fw.batch != nil:
		var werr error
		called := false
		err = fw.batch.Read(f.id, func(r io.Reader, sz int64) error {
			called = true
			size = sz
			n, werr = copyToFD(fd, r, fw.buf)
			return werr
		})
		if err != nil && !called {
			// git failed before giving this file a byte (it refused the
			// snapshot's directory, say): Go inflates from here on, and
			// says what is wrong if the packs are.
			fw.closeBatch()
			n, size, err = fw.stream(fd, f.id)
		} else if err != nil && err != werr {
			return fmt.Errorf("read blob of %q: %w", w.p.filePath(f), err)
		}
	default:
		n, size, err = fw.stream(fd, f.id)
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", w.p.filePath(f), err)
	}
	if n != size {
		return fmt.Errorf("write %q: blob %s gave %d bytes, expected %d", w.p.filePath(f), f.id, n, size)
	}
	if err := futimens(fd, w.times); err != nil {
		return fmt.Errorf("set time of %q: %w", w.p.filePath(f), err)
	}
	if w.git {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat %q: %w", w.p.filePath(f), err)
		}
		w.fileStats[i] = statOf(&st)
	}
	w.files.Add(1)
	w.bytes.Add(n)
	return nil
}

// stream writes blob id into fd, inflated from the packs by Go.
func (fw *fileWorker) stream(fd int, id snapshot.ID) (n, size int64, err error) {
	rc, size, err := fw.w.src.Stream(id)
	if err != nil {
		return 0, 0, fmt.Errorf("read blob %s: %w", id, err)
	}
	defer rc.Close()
	n, err = copyToFD(fd, rc, fw.buf)
	return n, size, err
}

// storedFD opens blob id from the blob store, if the checkout copies from
// it and the store still has it (a trim may have taken it since the fill:
// then it is streamed from the packs).
func (w *writer) storedFD(id snapshot.ID) (int, int64, bool) {
	if w.stored == nil {
		return -1, 0, false
	}
	fd, size, err := w.stored.StoredFD(id)
	return fd, size, err == nil
}

// noClone is set once the target refused to share blocks with the blob
// store (no reflinks on its file system, or another file system): every
// later file is copied.
var noClone atomic.Bool

// copyFile makes fd a copy of the size bytes of src: by reflink when the
// file systems can (no bytes copied at all), else copyRange.
func copyFile(fd, src int, size int64, buf []byte) (int64, error) {
	if size > 0 && !noClone.Load() {
		if err := cloneFile(fd, src); err == nil {
			return size, nil
		}
		noClone.Store(true)
	}
	return copyRange(fd, src, 0, size, buf)
}

// noCopyRange is set once copy_file_range has been refused between the
// blob store and the target (different file systems on old kernels, or a
// file system without it); pread and write are used from then on.
var noCopyRange atomic.Bool

// copyRange copies size bytes at off in src to fd, in the kernel when it
// can (copy_file_range: no bytes pass through this process).
func copyRange(fd, src int, off, size int64, buf []byte) (int64, error) {
	var done int64
	for done < size && !noCopyRange.Load() {
		roff := off + done
		n, err := copyFileRange(src, &roff, fd, int(min(size-done, 1<<30)))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				noCopyRange.Store(true)
				break
			}
			return done, err
		}
		if n == 0 {
			return done, fmt.Errorf("stored blob ends early")
		}
		done += int64(n)
	}
	for done < size {
		n, err := unix.Pread(src, buf[:min(int64(len(buf)), size-done)], off+done)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return done, err
		}
		if n == 0 {
			return done, fmt.Errorf("stored blob ends early")
		}
		for w := 0; w < n; {
			m, err := unix.Write(fd, buf[w:n])
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return done, err
			}
			w += m
		}
		done += int64(n)
	}
	return done, nil
}

// copyToFD copies r to fd through buf with raw write(2)s: no *os.File
// (whose poller registration and finalizer cost more than the write for
// small files), and never more than len(buf) bytes in memory.
func copyToFD(fd int, r io.Reader, buf []byte) (int64, error) {
	var total int64
	for {
		n, rerr := io.ReadFull(r, buf)
		for off := 0; off < n; {
			m, err := unix.Write(fd, buf[off:n])
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return total, err
			}
			off += m
		}
		total += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// writeCollided writes, in tree order, the files whose names fold
// together on this target: each one replaces the previous, so the last
// in git's order wins, as with git.
func (w *writer) writeCollided(ctx context.Context) error {
	idx := make([]int, 0, len(w.p.collided)+len(w.later))
	for i := range w.p.files {
		if w.p.files[i].collided {
			idx = append(idx, i)
		}
	}
	idx = append(idx, w.later...)
	if len(idx) == 0 {
		return nil
	}
	fw := &fileWorker{ctx: ctx, w: w, dir: -1, dirfd: -1, buf: make([]byte, 256<<10), noBatch: true}
	defer fw.closeDir()
	for _, i := range idx {
		if err := ctx.Err(); err != nil {
			return err
		}
		f := &w.p.files[i]
		var fd int
		err := w.as.Do(func() error {
			dirfd, err := fw.dirFD(f.dir)
			if err != nil {
				return err
			}
			// Remove what the other name left, then create afresh so the
			// kernel applies this file's mode. unlinkat without AT_REMOVEDIR
			// refuses a directory; symlinks do not exist yet.
			if err := unix.Unlinkat(dirfd, f.name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
					return refuse(w.p.filePath(f), ruleExistsLater)
				}
				return fmt.Errorf("replace %q: %w", w.p.filePath(f), err)
			}
			fd, err = unix.Openat(dirfd, f.name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, fileMode(f.kind))
			if err != nil {
				return fmt.Errorf("create %q: %w", w.p.filePath(f), err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := fw.fillFrom(fd, i); err != nil {
			return err
		}
		w.collided = append(w.collided, w.p.filePath(f))
	}
	return nil
}

// linkBatch is how many symlinks are created per switch to w.as; their
// targets are read from the snapshot before, with the daemon's
// credentials.
const linkBatch = 64

// writeLinks creates the symlinks last and sequentially: symlinkat never
// replaces an existing name, so a link cannot take the place of a
// directory some file was written through, and nothing written after
// could follow it (nothing is).
func (w *writer) writeLinks(ctx context.Context) error {
	fw := &fileWorker{w: w, dir: -1, dirfd: -1}
	defer fw.closeDir()
	targets := make([]string, 0, linkBatch)
	for lo := 0; lo < len(w.p.links); lo += linkBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+linkBatch, len(w.p.links))
		targets = targets[:0]
		for i := lo; i < hi; i++ {
			l := &w.p.links[i]
			path := w.p.filePath(l)
			target, err := w.src.ReadLink(l.id)
			if err != nil {
				return fmt.Errorf("read symlink %q: %w", path, err)
			}
			if rule := snapshot.CheckLinkTarget(target); rule != "" {
				return refuse(path, rule)
			}
			targets = append(targets, target)
		}
		err := w.as.Do(func() error {
			for i := lo; i < hi; i++ {
				if err := fw.link(i, targets[i-lo]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// link creates symlink i pointing to target, sets its time and records
// its stat data.
func (fw *fileWorker) link(i int, target string) error {
	w := fw.w
	l := &w.p.links[i]
	path := w.p.filePath(l)
	dirfd, err := fw.dirFD(l.dir)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(target, dirfd, l.name); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return refuse(path, ruleExistsLater)
		}
		return fmt.Errorf("create symlink %q: %w", path, err)
	}
	if err := unix.UtimesNanoAt(dirfd, l.name, w.times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set time of %q: %w", path, err)
	}
	if w.git {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, l.name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat %q: %w", path, err)
		}
		w.linkStats[i] = statOf(&st)
	}
	return nil
}
