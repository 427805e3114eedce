//go:build linux

package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
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
		v.journal.opened(uf, n.relPath())
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
	return 0
}
