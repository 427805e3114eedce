//go:build linux

package fs

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Open gives a handle: a lowerFile for an unchanged file opened for
// reading (no copy, nothing read until a READ arrives), an upperFile for
// everything else, copying the file up first if it is opened for writing.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	v := n.v
	v.fs.stats.opens.Add(1)
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write && v.readonly {
		return nil, 0, syscall.EROFS
	}
	v.mu.RLock()
	if e := n.live(); e != 0 {
		v.mu.RUnlock()
		return nil, 0, e
	}
	st := n.state()
	if !st.upper {
		if !write {
			defer v.mu.RUnlock()
			if !st.hasLower {
				return nil, 0, syscall.ENOENT
			}
			if st.lower.Kind != snapshot.File && st.lower.Kind != snapshot.Executable {
				return nil, 0, syscall.EINVAL
			}
			lf := &lowerFile{n: n, snap: v.snap, id: st.lower.ID, path: st.lowerPath, upfd: -1}
			n.prefetchSiblings()
			n.openStart(true)
			v.filesMu.Lock()
			if v.openLower == nil {
				v.openLower = map[*lowerFile]struct{}{}
			}
			v.openLower[lf] = struct{}{}
			v.filesMu.Unlock()
			return lf, fuse.FOPEN_KEEP_CACHE, 0
		}
		v.mu.RUnlock()
		v.mu.Lock()
		defer v.mu.Unlock()
		if e := n.live(); e != 0 {
			return nil, 0, e
		}
		if e := n.copyUp(flags&syscall.O_TRUNC == 0); e != 0 {
			return nil, 0, e
		}
	} else {
		defer v.mu.RUnlock()
	}
	if write {
		if e := n.refusePinned(); e != 0 {
			return nil, 0, e
		}
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return nil, 0, e
	}
	defer done()
	fl := int(flags)&^(unix.O_CREAT|unix.O_EXCL|unix.O_DIRECT|unix.O_NOCTTY) | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, name, fl, 0)
	if err != nil {
		return nil, 0, errnoOf(err)
	}
	uf := n.newUpperFile(fd)
	if write && v.ws != nil {
		v.journal.opened(uf, n.relPath(), multiLinked(fd))
	}
	return uf, fuse.FOPEN_KEEP_CACHE, 0
}

// lowerFile is an open, unchanged file. Its blob is inflated on the first
// read that reaches the daemon: with FOPEN_KEEP_CACHE most opens of a file
// whose pages the kernel holds never read, so they cost no inflation. A
// handle keeps reading the commit it was opened at across ws update (Update
// inflates the blobs of open handles before it lets the old snapshot go).
// If the file is copied up while open (another descriptor writes it),
// reads switch to the upper file so that the handle sees those writes.
type lowerFile struct {
	n    *node
	snap *snapshot.Snapshot // the commit the handle shows
	id   snapshot.ID
	path string

	// blobMu guards blob. Order: view.mu before blobMu.
	blobMu sync.Mutex
	blob   snapshot.Blob

	// upMu guards upfd. Order: upMu before view.mu.
	upMu sync.Mutex
	upfd int // descriptor of the upper copy, once there is one
}

// ensureBlob inflates the handle's blob if needed. Caller holds v.mu.
func (f *lowerFile) ensureBlob() (snapshot.Blob, error) {
	f.blobMu.Lock()
	defer f.blobMu.Unlock()
	if f.blob != nil {
		return f.blob, nil
	}
	f.n.v.fs.stats.inflations.Add(1)
	// What checkout writes at the path: .gitattributes conversions applied.
	b, err := f.snap.OpenAt(f.path, snapshot.Entry{ID: f.id, Kind: snapshot.File})
	if err != nil {
		return nil, err
	}
	f.blob = b
	return b, nil
}

func (f *lowerFile) getBlob() (snapshot.Blob, error) {
	f.blobMu.Lock()
	b := f.blob
	f.blobMu.Unlock()
	if b != nil {
		return b, nil
	}
	v := f.n.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, errors.New("workspace removed")
	}
	return f.ensureBlob()
}

func (f *lowerFile) upper() int {
	f.upMu.Lock()
	defer f.upMu.Unlock()
	if f.upfd >= 0 {
		return f.upfd
	}
	n := f.n
	n.mu.Lock()
	up := n.upper
	n.mu.Unlock()
	if !up {
		return -1
	}
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	if n.v.removed {
		return -1
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return -1
	}
	defer done()
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	f.upfd = fd
	return fd
}

func (f *lowerFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if fd := f.upper(); fd >= 0 {
		k, err := unix.Pread(fd, dest, off)
		if err != nil {
			return nil, errnoOf(err)
		}
		return fuse.ReadResultData(dest[:k]), 0
	}
	f.n.v.fs.stats.lowerReads.Add(1)
	b, err := f.getBlob()
	if err != nil {
		return nil, f.n.v.lowerErrno("read", f.path, err)
	}
	k, err := b.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, f.n.v.lowerErrno("read", f.path, err)
	}
	f.n.v.fs.stats.lowerReadBytes.Add(int64(k))
	return fuse.ReadResultData(dest[:k]), 0
}

// Flush: nothing is buffered here. ENOSYS makes the kernel stop sending
// FLUSH on every close (a round trip saved per file a build opens).
func (f *lowerFile) Flush(ctx context.Context) syscall.Errno { return syscall.ENOSYS }

func (f *lowerFile) Release(ctx context.Context) syscall.Errno {
	f.n.openDone(true)
	v := f.n.v
	v.filesMu.Lock()
	delete(v.openLower, f)
	v.filesMu.Unlock()
	f.blobMu.Lock()
	if f.blob != nil {
		f.blob.Close()
		f.blob = nil
	}
	f.blobMu.Unlock()
	f.upMu.Lock()
	if f.upfd >= 0 {
		unix.Close(f.upfd)
		f.upfd = -1
	}
	f.upMu.Unlock()
	return 0
}

// upperFile is an open upper-layer file: every operation is a system call
// on its descriptor. With passthrough, the kernel reads and writes the
// descriptor's file itself and these methods see only what it cannot pass.
type upperFile struct {
	n           *node
	fd          int
	passthrough bool
}

// openStart records an open of n and tells whether it may use passthrough.
func (n *node) openStart(cached bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !cached && n.v.fs.opts.Passthrough && n.cachedOpens == 0 {
		return true
	}
	n.cachedOpens++
	return false
}

func (n *node) openDone(cached bool) {
	if !cached {
		return
	}
	n.mu.Lock()
	n.cachedOpens--
	n.mu.Unlock()
}

func (n *node) newUpperFile(fd int) *upperFile {
	pt := n.openStart(false)
	return &upperFile{n: n, fd: fd, passthrough: pt}
}

var (
	_ gofs.FileReader          = (*upperFile)(nil)
	_ gofs.FileWriter          = (*upperFile)(nil)
	_ gofs.FileReleaser        = (*upperFile)(nil)
	_ gofs.FileFlusher         = (*upperFile)(nil)
	_ gofs.FileFsyncer         = (*upperFile)(nil)
	_ gofs.FileGetattrer       = (*upperFile)(nil)
	_ gofs.FileAllocater       = (*upperFile)(nil)
	_ gofs.FileLseeker         = (*upperFile)(nil)
	_ gofs.FilePassthroughFder = (*upperFile)(nil)
)

func (f *upperFile) PassthroughFd() (int, bool) { return f.fd, f.passthrough }

func (f *upperFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	k, err := unix.Pread(f.fd, dest, off)
	if err != nil {
		return nil, errnoOf(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (f *upperFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	written := 0
	for written < len(data) {
		k, err := unix.Pwrite(f.fd, data[written:], off+int64(written))
		if err != nil {
			if written > 0 {
				break // report the short write; the next one gets the error
			}
			return 0, errnoOf(err)
		}
		if k == 0 {
			break
		}
		written += k
	}
	return uint32(written), 0
}

func (f *upperFile) Flush(ctx context.Context) syscall.Errno { return syscall.ENOSYS }

func (f *upperFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if flags&1 != 0 {
		return errnoOf(unix.Fdatasync(f.fd))
	}
	return errnoOf(unix.Fsync(f.fd))
}

func (f *upperFile) Release(ctx context.Context) syscall.Errno {
	f.n.v.journal.closed(f) // after the last write through it
	f.n.openDone(!f.passthrough)
	return errnoOf(unix.Close(f.fd))
}

func (f *upperFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return errnoOf(err)
	}
	statToAttr(&st, &out.Attr)
	return 0
}

func (f *upperFile) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	return errnoOf(unix.Fallocate(f.fd, mode, int64(off), int64(size)))
}

func (f *upperFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	n, err := unix.Seek(f.fd, int64(off), int(whence))
	return uint64(n), errnoOf(err)
}

func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	if uf, ok := f.(*upperFile); ok {
		return uf.Fsync(ctx, flags)
	}
	if f == nil {
		n.io.mu.Lock()
		w := n.io.writer
		n.io.mu.Unlock()
		if w != nil {
			return w.Fsync(ctx, flags) // what writes without a handle wrote
		}
	}
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	st := n.state()
	if !st.upper || n.v.upperFd() < 0 {
		return 0
	}
	if kindIsDir(n) {
		fd, done, e := n.dirFd()
		if e != 0 {
			return e
		}
		defer done()
		return errnoOf(unix.Fsync(fd))
	}
	// Written, if at all, through descriptors of the writes' own (past
	// the fd budget, inodeWriter): sync the file through one more.
	pfd, name, done, e := n.loc()
	if e != 0 {
		return 0
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	done()
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0
	}
	if flags&1 != 0 {
		return errnoOf(unix.Fdatasync(fd))
	}
	return errnoOf(unix.Fsync(fd))
}

// Reads and writes without a handle. In no-open mode (raw.go) the kernel
// opens files by itself and sends READ and WRITE with no handle; go-fuse
// gives them to the node. The kernel checked the caller's permissions at
// open(2) (default_permissions), so what is left here is the I/O: an
// unchanged file is read from its blob, an upper file through a descriptor
// the node keeps until the kernel forgets it, and the first WRITE (or
// SETATTR, setattr.go) of an unchanged file copies it up, as an OPEN for
// writing does with handles. For git's fsmonitor, a node's first WRITE
// makes its descriptor a writer in the journal until the node is
// forgotten: every answer lists it meanwhile, as for a handle open for
// writing (writes may still be in the page cache of an mmap). Descriptors
// are kept within FS.fdBudget only; past it each READ or WRITE opens one
// of its own, and each such WRITE is noted in the journal.

var (
	_ gofs.NodeReader    = (*node)(nil)
	_ gofs.NodeWriter    = (*node)(nil)
	_ gofs.NodeAllocater = (*node)(nil)
)

// inodeIO is a node's own I/O state in no-open mode.
type inodeIO struct {
	// mu guards the fields below. Order: view.mu before inodeIO.mu, which
	// is otherwise a leaf (only system calls run under it).
	mu         sync.Mutex
	rfd        int32         // read-only descriptor of the upper file + 1; 0: none (rfd and writer count against FS.fdBudget)
	detached   bool          // the file has no name to be found by: rfd or writer is it
	pushedFile bool          // its content was pushed into the page cache
	writer     *upperFile    // read-write descriptor, a writer in the journal
	pinned     snapshot.Blob // the blob of a file whose path ws update changed
	pushed     uint64        // a directory: v.epoch+1 once its files were queued to push
}

func (n *node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f != nil {
		if r, ok := f.(gofs.FileReader); ok {
			return r.Read(ctx, dest, off)
		}
		return nil, syscall.EBADF
	}
	if fd := n.io.fd(); fd >= 0 {
		return preadResult(fd, dest, off)
	}
	n.io.mu.Lock()
	b := n.io.pinned
	n.io.mu.Unlock()
	if b != nil {
		return n.readBlob(b, dest, off)
	}
	v := n.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	st := n.state()
	if e := n.liveOrLower(&st); e != 0 {
		return nil, e
	}
	if st.upper {
		fd, done, e := n.upperReadFd()
		if e != 0 {
			return nil, e
		}
		defer done()
		return preadResult(fd, dest, off)
	}
	if !st.hasLower {
		return nil, syscall.ENOENT
	}
	if st.lower.Kind != snapshot.File && st.lower.Kind != snapshot.Executable {
		return nil, syscall.EINVAL
	}
	n.pushSiblings()
	n.io.mu.Lock()
	n.io.pushedFile = true // its pages come with this READ: no push
	n.io.mu.Unlock()
	v.fs.stats.inflations.Add(1)
	b, err := v.snap.OpenAt(st.lowerPath, st.lower) // .gitattributes conversions applied
	if err != nil {
		return nil, v.lowerErrno("read", st.lowerPath, err)
	}
	defer b.Close()
	return n.readBlob(b, dest, off)
}

func (n *node) readBlob(b snapshot.Blob, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.v.fs.stats.lowerReads.Add(1)
	k, err := b.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, n.v.lowerErrno("read", "", err)
	}
	n.v.fs.stats.lowerReadBytes.Add(int64(k))
	return fuse.ReadResultData(dest[:k]), 0
}

func preadResult(fd int, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	k, err := unix.Pread(fd, dest, off)
	if err != nil {
		return nil, errnoOf(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// fd is a descriptor to read the node's upper file through, or -1.
func (io *inodeIO) fd() int {
	io.mu.Lock()
	defer io.mu.Unlock()
	return io.fdLocked()
}

func (io *inodeIO) fdLocked() int {
	if io.writer != nil {
		return io.writer.fd
	}
	return int(io.rfd) - 1
}

// isDetached reports whether the node's file has no name (holdChild).
func (io *inodeIO) isDetached() bool {
	io.mu.Lock()
	defer io.mu.Unlock()
	return io.detached
}

// detachedFd is the descriptor of a file that lost its last name (or never
// had one: O_TMPFILE) while the kernel knew it, or -1: its attributes
// come from the descriptor, since its old path may name another file now.
func (io *inodeIO) detachedFd() int {
	io.mu.Lock()
	defer io.mu.Unlock()
	if !io.detached {
		return -1
	}
	return io.fdLocked()
}

// holdDetached gives n, whose upper file is about to lose its last name
// (unlink, rename over it), a descriptor of the file to keep until the
// kernel forgets n (keepDetached): the kernel sends no OPEN in no-open
// mode, so a process that opened the file reaches it only by inode, and a
// READ, WRITE or fstat must still find it (POSIX: an unlinked file lives
// while open). Within the fd budget: a user holding open thousands of
// files they unlink would otherwise run the daemon out of descriptors;
// past it such a file's READ fails with ENOENT, as before. A file with
// other names keeps being found through its path.
// Caller holds v.mu for writing; pfd/name are where the file is now.
func (n *node) holdDetached(pfd int, name string) {
	if n.v.fs.opts.OpenHandles {
		return // handles hold their files
	}
	st, err := workspace.Lstat(pfd, name)
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink > 1 {
		return
	}
	n.keepDetached(pfd, name)
}

// keepDetached makes n keep a descriptor of its upper file pfd/name,
// within the fd budget, read-write where it can (a process may go on
// writing it), read-only otherwise (a read-only file, for a daemon that
// is not root), unless it keeps a writer already, and marks it detached:
// from then on n reaches its file through that descriptor only. A node
// past the budget keeps nothing new and is not marked. Caller holds v.mu
// for writing.
func (n *node) keepDetached(pfd int, name string) {
	n.io.mu.Lock()
	hasWriter, hasReader := n.io.writer != nil, n.io.rfd != 0
	n.io.mu.Unlock()
	if !hasWriter {
		if fd, err := unix.Openat(pfd, name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0); err == nil {
			if _, kept := n.keepWriter(fd, ""); !kept {
				unix.Close(fd)
				if !hasReader {
					return
				}
			}
		} else if !hasReader {
			fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
			if err != nil || !n.keepRfd(fd) {
				if err == nil {
					unix.Close(fd)
				}
				return
			}
		}
	}
	n.io.markDetached()
}

// markDetached records that the node's file has no name to be found by.
func (io *inodeIO) markDetached() {
	io.mu.Lock()
	io.detached = true
	io.mu.Unlock()
}

// upperReadFd opens the node's upper file for reading, keeping the
// descriptor while the fd budget allows. Caller holds v.mu.
func (n *node) upperReadFd() (int, func(), syscall.Errno) {
	pfd, name, done, e := n.loc()
	if e != 0 {
		return -1, noop, e
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	done()
	if err != nil {
		return -1, noop, errnoOf(err)
	}
	if n.keepRfd(fd) {
		return fd, noop, 0
	}
	return fd, func() { unix.Close(fd) }, 0
}

// keepRfd makes fd the descriptor the node reads its upper file through
// until the kernel forgets it, if the fd budget allows. It reports whether
// it took fd (not if the node has one already: another read kept one
// meanwhile).
func (n *node) keepRfd(fd int) bool {
	if n.v.fs.fdBudget.Add(-1) < 0 {
		n.v.fs.fdBudget.Add(1)
		return false
	}
	n.io.mu.Lock()
	defer n.io.mu.Unlock()
	if n.io.rfd != 0 || n.io.writer != nil {
		n.v.fs.fdBudget.Add(1)
		return false
	}
	n.io.rfd = int32(fd) + 1
	return true
}

// holdUpperFiles runs in a ws update that may discard local changes,
// before the switch removes them (caller holds v.mu for writing): every
// upper file the kernel knows gets a descriptor its node keeps, if it has
// none, so that a process holding it open reads, by inode, what it opened
// (invariant 5) once its path shows the lower file. Only directories with
// an upper part are walked: no upper file lies below the others. Within
// the fd budget only: past it (a quarter of RLIMIT_NOFILE spent on kept
// descriptors) the daemon would run out of descriptors for everything
// else, and such a file's READ after the reset fails with ENOENT.
//
// With detach (ws rm, whose upper layer is deleted) every such file is
// marked as having no name (holdDetached), so that its attributes come
// from its descriptor, and gets a read-write one where it can, so that a
// process writing it goes on doing so into the deleted file.
func (v *view) holdUpperFiles(detach bool) {
	if v.root == nil {
		return
	}
	var walk func(d *node)
	walk = func(d *node) {
		for name, ch := range d.Children() {
			cn, ok := ch.Operations().(*node)
			if !ok || cn.v != v || (d == v.root && name == workspace.GitDirName) { // no update discards the git dir
				continue
			}
			st := cn.state()
			if !st.upper {
				continue
			}
			if kindIsDir(cn) {
				walk(cn)
				continue
			}
			if ch.StableAttr().Mode&syscall.S_IFMT != syscall.S_IFREG {
				continue
			}
			if detach {
				// ws rm: the upper layer goes with it.
				if pfd, name, done, e := cn.loc(); e == 0 {
					cn.keepDetached(pfd, name)
					done()
				}
				continue
			}
			if cn.io.fd() >= 0 {
				continue
			}
			pfd, name, done, e := cn.loc()
			if e != 0 {
				continue
			}
			fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			done()
			if err != nil {
				continue // unreadable even so: its READ fails as it would have
			}
			if !cn.keepRfd(fd) {
				unix.Close(fd)
			}
		}
	}
	walk(v.root)
}

func (n *node) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if f != nil {
		if w, ok := f.(gofs.FileWriter); ok {
			return w.Write(ctx, data, off)
		}
		return 0, syscall.EBADF
	}
	w, done, e := n.inodeWriter()
	if e != 0 {
		return 0, e
	}
	defer done()
	return w.Write(ctx, data, off)
}

func (n *node) Allocate(ctx context.Context, f gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if f != nil {
		if a, ok := f.(gofs.FileAllocater); ok {
			return a.Allocate(ctx, off, size, mode)
		}
		return syscall.EBADF
	}
	w, done, e := n.inodeWriter()
	if e != 0 {
		return e
	}
	defer done()
	return w.Allocate(ctx, off, size, mode)
}

// inodeWriter returns the node's read-write descriptor, copying the file
// up and opening it on first use, and what to call once the write is done.
// The node keeps the descriptor until the kernel forgets it, within the fd
// budget: the kernel may keep far more files than the daemon may hold
// open (a checkout, a build writes tens of thousands). Past it the
// descriptor is the write's alone, closed when it is done, and every such
// write notes the path in the journal instead of a writer listing it.
func (n *node) inodeWriter() (*upperFile, func(), syscall.Errno) {
	n.io.mu.Lock()
	w := n.io.writer
	n.io.mu.Unlock()
	if w != nil {
		return w, noop, 0
	}
	v := n.v
	if v.readonly {
		return nil, noop, syscall.EROFS
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return nil, noop, e
	}
	if kindIsDir(n) {
		return nil, noop, syscall.EISDIR
	}
	n.io.mu.Lock()
	detached := n.io.detached
	n.io.mu.Unlock()
	if detached {
		// Its name is gone (holdChild) and it kept no read-write
		// descriptor: opening the name would write another file, or
		// copy a removed lower file up where its name was.
		return nil, noop, syscall.EBADF
	}
	if e := n.copyUp(true); e != 0 {
		return nil, noop, e
	}
	if e := n.refusePinned(); e != 0 {
		return nil, noop, e
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return nil, noop, e
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	done()
	if err != nil {
		return nil, noop, errnoOf(err)
	}
	if w, kept := n.keepWriter(fd, n.relPath()); kept {
		return w, noop, 0
	}
	w = &upperFile{n: n, fd: fd}
	p := n.relPath()
	return w, func() {
		linked := multiLinked(fd)
		unix.Close(fd)
		if v.ws != nil { // after the write
			if linked {
				v.journal.note(allChanged)
			} else {
				v.journal.noteWrite(p)
			}
		}
	}, 0
}

// keepWriter makes fd, a read-write descriptor of n's upper file, n's
// inode writer and a writer in the journal at p ("" for none), if the fd
// budget allows. It reports whether it took fd, and the writer to use:
// n's own if another write kept one meanwhile (fd is then still the
// caller's).
func (n *node) keepWriter(fd int, p string) (*upperFile, bool) {
	if n.v.fs.fdBudget.Add(-1) < 0 {
		n.v.fs.fdBudget.Add(1)
		return nil, false
	}
	n.io.mu.Lock()
	defer n.io.mu.Unlock()
	if n.io.writer != nil { // impossible under v.mu or for a new node
		n.v.fs.fdBudget.Add(1)
		return n.io.writer, false
	}
	w := &upperFile{n: n, fd: fd}
	n.io.writer = w
	if n.v.ws != nil && p != "" {
		n.v.journal.opened(w, p, multiLinked(fd))
	}
	return w, true
}

// takeWriter hands fd, a read-write descriptor of n's upper file just
// made (CREATE) at p, to n as its inode writer, as inodeWriter would have
// opened it. Past the budget fd is closed: writes then open their own
// (inodeWriter).
func (n *node) takeWriter(fd int, p string) {
	if _, kept := n.keepWriter(fd, p); !kept {
		unix.Close(fd)
	}
}

// dropIO closes what the node kept for reads and writes without a handle,
// once the kernel has forgotten it: no descriptor can reach it any more.
func (n *node) dropIO() {
	n.io.mu.Lock()
	rfd, w, b := n.io.rfd, n.io.writer, n.io.pinned
	n.io.rfd, n.io.writer, n.io.pinned, n.io.detached = 0, nil, nil, false
	n.io.mu.Unlock()
	if rfd != 0 {
		unix.Close(int(rfd) - 1)
		n.v.fs.fdBudget.Add(1) // every kept descriptor counts against it
	}
	if w != nil {
		n.v.journal.closed(w)
		unix.Close(w.fd)
		n.v.fs.fdBudget.Add(1)
	}
	if b != nil {
		b.Close()
	}
}

// pinChangedInodes runs in ws update, between the switch of the workspace
// to its new commit and v.snap following it (caller holds v.mu for
// writing). Without OPEN, a descriptor opened before the update reads by
// inode until the kernel forgets it, and a file whose path now shows other
// content keeps its inode (lowerIno includes the blob): so every file
// inode the kernel knows whose path changed keeps the blob it showed
// (invariant 5). Only directories whose tree differs between the commits
// are walked, so the cost is what changed, not the tree's size.
func (v *view) pinChangedInodes() {
	if v.ws == nil || v.root == nil {
		return
	}
	old, cur := v.snap, v.ws.Snapshot()
	if old == nil || cur == nil || old == cur {
		return
	}
	// lookup is what path p holds in the new commit; in is the listing
	// of p's directory there, when the walk has it (one tree read per
	// directory, where a lookup by path reads one per component: 26 ms
	// of a 20k-file ws update went to lookups).
	lookup := func(p string, in []snapshot.Entry, inDir string) (snapshot.Entry, bool) {
		if in != nil {
			if dir, name := splitPath(p); dir == inDir {
				return snapshot.Find(in, name)
			}
		}
		e, err := cur.Lookup(p)
		return e, err == nil
	}
	var walk func(d *node, e snapshot.Entry, found bool)
	walk = func(d *node, e snapshot.Entry, found bool) {
		dst := d.state()
		if !dst.upper && dst.hasLower && found && e.ID == dst.lower.ID {
			// A directory of the lower layer only, whose tree is the
			// same in the new commit: nothing below changed.
			return
		}
		var in, oldIn []snapshot.Entry
		var inErr, oldErr error
		if found && e.Kind == snapshot.Dir && dst.hasLowerPath {
			in, inErr = cur.Tree(e.ID)
		}
		if dst.hasLowerPath && dst.hasLower && dst.lower.Kind == snapshot.Dir {
			oldIn, oldErr = old.Tree(dst.lower.ID) // what v.snap, still old, resolves the children by
		}
		visit := func(cn *node) {
			st := cn.stateIn(dst.lowerPath, oldIn)
			if kindIsDir(cn) {
				if !st.hasLowerPath {
					walk(cn, snapshot.Entry{}, false)
					return
				}
				ce, ok := lookup(st.lowerPath, in, dst.lowerPath)
				walk(cn, ce, ok)
				return
			}
			if st.upper || !st.hasLower || (st.lower.Kind != snapshot.File && st.lower.Kind != snapshot.Executable) {
				return
			}
			if ce, ok := lookup(st.lowerPath, in, dst.lowerPath); ok && ce.ID == st.lower.ID {
				return
			}
			cn.io.mu.Lock()
			pinned := cn.io.pinned != nil
			cn.io.mu.Unlock()
			if pinned {
				return
			}
			b, err := old.OpenAt(st.lowerPath, st.lower) // what the path showed, converted
			if err != nil {
				v.lowerErrno("pin changed file", st.lowerPath, err)
				return
			}
			cn.io.mu.Lock()
			if cn.io.pinned == nil {
				cn.io.pinned, b = b, nil
			}
			cn.io.mu.Unlock()
			if b != nil {
				b.Close()
			}
		}
		ours := func(ch *gofs.Inode) (*node, bool) {
			cn, ok := ch.Operations().(*node)
			return cn, ok && cn.v == v
		}
		if !dst.upper && oldIn != nil && oldErr == nil && inErr == nil {
			// A directory of the lower layer only: its children are the
			// old tree's entries under their own names (nothing above
			// the upper layer can rename or add one), so only the names
			// the two trees disagree on need a look; the rest keep their
			// blob. This skips the ~95% of a changed directory that did
			// not change.
			_ = snapshot.Diff(oldIn, in, func(x, _ *snapshot.Entry) error {
				if x == nil {
					return nil // new in this commit: no inode showed it
				}
				if ch := d.GetChild(x.Name); ch != nil {
					if cn, ok := ours(ch); ok {
						visit(cn)
					}
				}
				return nil
			})
			return
		}
		for _, ch := range d.Children() {
			if cn, ok := ours(ch); ok {
				visit(cn)
			}
		}
	}
	walk(v.root, snapshot.Entry{Kind: snapshot.Dir, ID: cur.Root()}, true)
}

// splitPath splits a slash-separated path at its last slash.
func splitPath(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}

// Pushing into the page cache. A cold read of a tree through FUSE costs a
// READ per file, and the GETATTR that follows it (a READ invalidates the
// atime the kernel holds, and the reader's next stat asks): measured on a
// new workspace of 20k files, 25k READs and 21k GETATTRs, 4.9 s for a tar
// that takes 0.4 s once the pages are cached. So the first READ of a
// lower file in a directory (no-open mode) has the view's pusher store
// the content of every other lower file of the directory that the kernel
// knows (it looked them up listing the directory) into the kernel's page
// cache (NOTIFY_STORE), in the background, in name order: a tree walk
// that reads content (tar, grep, a build) then finds the pages there,
// while one that only lists (find, ls) pushes nothing. The content is what
// a READ would return (immutable lower bytes, converted as
// .gitattributes say); the pusher holds no lock while it writes to the
// kernel, which may wait for a READ of the same page in progress.

// pushMax is the largest file pushed; larger ones are read as asked.
const pushMax = 4 << 20

// pushJob is one file to push: a node's lower file, or a shared file
// (shared.go).
type pushJob struct {
	to   pushTarget
	path string
	e    snapshot.Entry
}

// pushTarget stores a job's content in the kernel's page cache, once,
// and returns the buffer for the next.
type pushTarget interface {
	push(j pushJob, buf []byte) []byte
}

// pusher pushes a view's files in order, with one goroutine while it has
// work.
type pusher struct {
	// mu guards q and running; a leaf.
	mu      sync.Mutex
	q       []pushJob
	running bool
}

// pushQueueMax bounds the queue: beyond it files are read as asked.
const pushQueueMax = 1 << 16

// pushSiblings queues the other lower files of n's directory the first
// time one of them is read without a handle. Caller holds v.mu.
func (n *node) pushSiblings() {
	p, self := n.parent()
	if p == nil {
		return
	}
	p.pushOnce(self, n)
}

// pushOnce is pushChildren the first time it is asked for in this epoch
// of the view. Caller holds v.mu.
func (d *node) pushOnce(from string, skip *node) {
	v := d.v
	d.io.mu.Lock()
	first := d.io.pushed != v.epoch+1
	d.io.pushed = v.epoch + 1
	d.io.mu.Unlock()
	if first {
		d.pushChildren(from, skip)
	}
}

// listed runs once the kernel holds directory n's whole listing (its
// READDIR stream released). A directory whose files were read before an
// update (pushed in an earlier epoch) gets its new files pushed at once:
// the kernel listed it again because an update changed it, and what the
// reader comes back for is the changed files, which would each cost a
// READ, and the GETATTR that a READ's atime change brings, on the next
// walk (ws update --reset of a slot, then a build). A directory never read
// from waits for its first READ, as before: a walk that only lists (find)
// pushes nothing.
func (n *node) listed() {
	v := n.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return
	}
	n.io.mu.Lock()
	again := n.io.pushed != 0 && n.io.pushed != v.epoch+1
	if again {
		n.io.pushed = v.epoch + 1
	}
	n.io.mu.Unlock()
	if again {
		n.pushChildren("", nil)
	}
}

// pushChildren queues d's lower files the kernel knows and has not been
// given yet, but skip, in name order from the one after from, then the
// ones before: a walk reads in name order, and the pusher should be ahead
// of it, not behind. Caller holds v.mu.
func (d *node) pushChildren(from string, skip *node) {
	v := d.v
	kids := d.Children()
	names := make([]string, 0, len(kids))
	for name := range kids {
		names = append(names, name)
	}
	sort.Strings(names)
	start := sort.SearchStrings(names, from)
	names = append(names[start:], names[:start]...)
	var jobs []pushJob
	for _, name := range names {
		ops := kids[name].Operations()
		if sf, ok := ops.(*sharedFile); ok {
			if !sf.pushed.Load() {
				jobs = append(jobs, pushJob{to: sf})
			}
			continue
		}
		cn, ok := ops.(*node)
		if !ok || cn == skip || cn.v != v || kindIsDir(cn) {
			continue
		}
		cn.io.mu.Lock()
		done := cn.io.pushedFile
		cn.io.mu.Unlock()
		if done {
			continue
		}
		st := cn.state()
		if st.upper || !st.hasLower || (st.lower.Kind != snapshot.File && st.lower.Kind != snapshot.Executable) {
			continue
		}
		jobs = append(jobs, pushJob{to: cn, path: st.lowerPath, e: st.lower})
	}
	v.push.add(v, jobs)
}

func (p *pusher) add(v *view, jobs []pushJob) {
	if len(jobs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q)+len(jobs) > pushQueueMax {
		return
	}
	p.q = append(p.q, jobs...)
	if !p.running {
		p.running = true
		go p.run()
	}
}

// pushBufs holds the pushers' buffers between runs: a run ends whenever
// its queue empties, which a walk makes happen once per directory.
var pushBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (p *pusher) run() {
	bp := pushBufs.Get().(*[]byte)
	buf := *bp
	for {
		p.mu.Lock()
		if len(p.q) == 0 {
			p.running = false
			p.q = nil
			p.mu.Unlock()
			*bp = buf[:0]
			pushBufs.Put(bp)
			return
		}
		j := p.q[0]
		p.q = p.q[1:]
		p.mu.Unlock()
		buf = j.to.push(j, buf)
	}
}

// push stores j's content in the kernel's page cache (once per node), and
// returns buf for the next.
func (n *node) push(j pushJob, buf []byte) []byte {
	n.io.mu.Lock()
	done := n.io.pushedFile
	n.io.pushedFile = true
	n.io.mu.Unlock()
	if done {
		return buf
	}
	v := n.v
	v.mu.RLock()
	if v.removed {
		v.mu.RUnlock()
		return buf
	}
	data, err := v.snap.ReadFile(j.path, j.e, buf, pushMax)
	v.mu.RUnlock()
	if err != nil || len(data) == 0 {
		return buf // too large, or a READ will say why, if one comes
	}
	buf = data
	n.WriteCache(0, data) // the kernel forgot it: ENOENT, nothing to do
	v.fs.stats.pushed.Add(1)
	return buf
}
