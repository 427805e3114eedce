//go:build linux

package fs

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/snapshot"
)

// sharedFile is a browse path's regular file whose bytes are its blob's
// (no .gitattributes conversion applies): one inode for every browse path
// of the repository that shows the blob with that mode, wherever it lies
// (sharedIno). So the identical files of two tags are one file to the
// kernel, as hard links are: diff -r, cmp and rsync see one device, inode
// and set of attributes and read neither side (GNU diff skips such a
// pair), and the pages are cached once for every tag. Its times are its
// blob's (blobTime), not a commit's: one inode has one time. Directories
// stay per view, with the commit's time; so do symlinks and converted
// files, which are few.
//
// The bytes are read through the snapshot of the browse view that first
// showed the file, whose lease the first read takes a reference on. go-fuse
// keeps a node's directories while the node lives, so that view keeps its
// root, and its lease, as long as the file lives in any view; the
// reference makes that a guarantee of this package rather than a habit of
// go-fuse's. If the view has let its snapshot go all the same (the file
// handed to the kernel again after it forgot it), the first read leases
// the commit anew.
type sharedFile struct {
	gofs.Inode
	src          *view // the browse view that first showed it
	repo, commit string
	path         string // in src, for messages
	e            snapshot.Entry
	size         int64
	uid, gid     uint32

	// mu guards held. Order: before view.mu, and the store's locks
	// (taking a lease anew).
	mu   sync.Mutex
	held *lease // the snapshot reads go through, from the first read until forgotten

	pushed atomic.Bool // its content is in the page cache, or on its way (file.go's pusher)
}

var (
	_ gofs.NodeGetattrer     = (*sharedFile)(nil)
	_ gofs.NodeSetattrer     = (*sharedFile)(nil)
	_ gofs.NodeOpener        = (*sharedFile)(nil)
	_ gofs.NodeReader        = (*sharedFile)(nil)
	_ gofs.NodeWriter        = (*sharedFile)(nil)
	_ gofs.NodeFsyncer       = (*sharedFile)(nil)
	_ gofs.NodeGetxattrer    = (*sharedFile)(nil)
	_ gofs.NodeListxattrer   = (*sharedFile)(nil)
	_ gofs.NodeSetxattrer    = (*sharedFile)(nil)
	_ gofs.NodeRemovexattrer = (*sharedFile)(nil)
	_ gofs.NodeStatfser      = (*sharedFile)(nil)
	_ gofs.NodeOnForgetter   = (*sharedFile)(nil)
)

// newSharedFile is the shared file a lookup found (ci), whose attributes
// it filled (attr). Caller holds v.mu.
func (v *view) newSharedFile(ci *childInfo, attr *fuse.Attr) *sharedFile {
	return &sharedFile{src: v, repo: v.browse.repo, commit: v.browse.commit, path: ci.lowerPath,
		e: ci.lower, size: int64(attr.Size), uid: attr.Uid, gid: attr.Gid}
}

func (sf *sharedFile) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	if sf.e.Kind == snapshot.Executable {
		out.Mode = syscall.S_IFREG | 0o755
	}
	out.Size = uint64(sf.size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.Nlink = 1
	out.Uid, out.Gid = sf.uid, sf.gid
	setTimes(&out.Attr, blobTime(sf.e.ID))
	return 0
}

func (sf *sharedFile) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Open gives no handle: reads arrive by inode, as in no-open mode.
func (sf *sharedFile) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	sf.src.fs.stats.opens.Add(1)
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (sf *sharedFile) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	stats := &sf.src.fs.stats
	stats.lowerReads.Add(1)
	l, e := sf.lease(ctx)
	if e != 0 {
		return nil, e
	}
	if !sf.pushed.Swap(true) { // its pages come with this READ
		sf.pushSiblings()
	}
	stats.inflations.Add(1)
	b, err := l.snap.Open(sf.e.ID)
	if err != nil {
		return nil, sf.src.lowerErrno("read", sf.path, err)
	}
	defer b.Close()
	k, err := b.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, sf.src.lowerErrno("read", sf.path, err)
	}
	stats.lowerReadBytes.Add(int64(k))
	return fuse.ReadResultData(dest[:k]), 0
}

// pushSiblings has the pusher of a directory the file is in store the
// other files the kernel knows there, as a node's first READ does
// (node.pushSiblings).
func (sf *sharedFile) pushSiblings() {
	_, p := sf.Parent()
	if p == nil {
		return
	}
	d, ok := p.Operations().(*node)
	if !ok {
		return
	}
	v := d.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed || v.snap == nil {
		return
	}
	d.pushOnce("", nil)
}

// push stores the file's bytes in the kernel's page cache (pusher).
func (sf *sharedFile) push(_ pushJob, buf []byte) []byte {
	if sf.pushed.Swap(true) {
		return buf
	}
	l, e := sf.lease(context.Background())
	if e != 0 {
		return buf
	}
	data, err := l.snap.ReadFile(sf.path, sf.e, buf, pushMax)
	if err != nil || len(data) == 0 {
		return buf // too large, or a READ will say why, if one comes
	}
	sf.WriteCache(0, data) // the kernel forgot it: ENOENT, nothing to do
	sf.src.fs.stats.pushed.Add(1)
	return data
}

// lease returns the lease reads go through, taking one on the first read.
func (sf *sharedFile) lease(ctx context.Context) (*lease, syscall.Errno) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.held != nil {
		return sf.held, 0
	}
	if l := sf.src.holdLease(); l != nil {
		sf.held = l
		return l, 0
	}
	// The view that found it let its snapshot go (its root forgotten, or
	// the mount is going away); another browse path shows the file.
	f := sf.src.fs
	done, e := f.browsing.acquire(ctx)
	if e != 0 {
		return nil, e
	}
	dctx, cancel := detach(ctx)
	snap, release, err := f.opts.Snapshots.Get(dctx, sf.repo, sf.commit)
	cancel()
	done()
	if err != nil {
		f.log.Error("gitfs: browse snapshot", "repo", sf.repo, "commit", sf.commit, "err", err)
		return nil, syscall.EIO
	}
	sf.held = f.newLease(snap, release)
	return sf.held, 0
}

// OnForget lets the lease go; a lookup that hands the kernel this node
// again (go-fuse registers a forgotten node anew) leases again on its
// next read.
func (sf *sharedFile) OnForget() {
	sf.mu.Lock()
	l := sf.held
	sf.held = nil
	sf.mu.Unlock()
	if l != nil {
		l.drop()
	}
}

func (sf *sharedFile) Write(context.Context, gofs.FileHandle, []byte, int64) (uint32, syscall.Errno) {
	return 0, syscall.EROFS
}

func (sf *sharedFile) Fsync(context.Context, gofs.FileHandle, uint32) syscall.Errno { return 0 }

func (sf *sharedFile) Getxattr(context.Context, string, []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

func (sf *sharedFile) Listxattr(context.Context, []byte) (uint32, syscall.Errno) { return 0, 0 }

func (sf *sharedFile) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EROFS
}

func (sf *sharedFile) Removexattr(context.Context, string) syscall.Errno { return syscall.EROFS }

func (sf *sharedFile) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(sf.src.fs.opts.Root, &s); err != nil {
		return errnoOf(err)
	}
	out.FromStatfsT(&s)
	return 0
}
