//go:build linux

package fs

import (
	"context"
	"strconv"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/workspace"
)

// Handlers that add a name (Create, Tmpfile, Mkdir, Mknod, Symlink, Link)
// and copy-up. Every change to the upper layer holds v.mu for writing and
// is one atomic step of workspace.Layer, so that a crash leaves either
// the old or the new state.

func caller(ctx context.Context) (uint32, uint32, bool) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid, true
	}
	return 0, 0, false
}

// own gives a new entry to the calling user (when the layer may chown).
func (v *view) own(ctx context.Context, dfd int, name string) {
	if uid, gid, ok := caller(ctx); ok {
		v.layer.Own(dfd, name, uid, gid)
	}
}

// copyUp makes n an upper entry (a merged directory for a lower directory,
// a full copy for a file unless withData is false). Caller holds v.mu for
// writing.
func (n *node) copyUp(withData bool) syscall.Errno {
	v := n.v
	if v.readonly || v.upperFd() < 0 {
		return syscall.EROFS
	}
	st := n.state()
	if st.upper {
		return 0
	}
	if !st.hasLower {
		return syscall.ENOENT
	}
	p, name := n.parent()
	if p == nil {
		return syscall.ENOENT
	}
	if e := p.copyUp(true); e != 0 {
		return e
	}
	pfd, done, e := p.dirFd()
	if e != 0 {
		return e
	}
	defer done()
	v.fs.stats.copyUps.Add(1)
	if err := v.layer.CopyUp(v.snap, pfd, name, st.lower, st.lowerPath, n.StableAttr().Ino, withData, v.lowerTime(st.lowerPath)); err != nil {
		return v.errno("copy-up", st.lowerPath, err)
	}
	n.mu.Lock()
	n.upper = true
	if kindMode(st.lower.Kind) != syscall.S_IFDIR {
		n.hasLower, n.hasLowerPath = false, false
	}
	n.mu.Unlock()
	return 0
}

// place creates name in pfd with mk, over a whiteout if there is one
// (workspace.Layer.Place).
func (v *view) place(pfd int, name string, isDir bool, mk func(dfd int, nm string) error) syscall.Errno {
	return errnoOf(v.layer.Place(pfd, name, isDir, mk))
}

// lockNewEntry is the common start of every handler that adds a name
// (Create, Mkdir, Mknod, Symlink, Link): it takes the view lock for
// writing, checks that name is free in n, makes n an upper directory and
// returns its descriptor. unlock releases both, in order.
func (n *node) lockNewEntry(name string) (pfd int, unlock func(), e syscall.Errno) {
	v := n.v
	if v.readonly {
		return -1, nil, syscall.EROFS
	}
	v.mu.Lock()
	if e := n.prepareDir(name); e != 0 {
		v.mu.Unlock()
		return -1, nil, e
	}
	pfd, done, e := n.dirFd()
	if e != 0 {
		v.mu.Unlock()
		return -1, nil, e
	}
	return pfd, func() {
		done()
		v.mu.Unlock()
	}, 0
}

// prepareDir checks that name is free in n and makes n an upper directory.
func (n *node) prepareDir(name string) syscall.Errno {
	if n.v.readonly {
		return syscall.EROFS
	}
	if e := n.live(); e != 0 {
		return e
	}
	if _, e := n.lookupChild(name); e == 0 {
		return syscall.EEXIST
	} else if e != syscall.ENOENT {
		return e
	}
	return n.copyUp(true)
}

func (n *node) newNode(ctx context.Context, st *unix.Stat_t, opaque bool, out *fuse.EntryOut) *gofs.Inode {
	ci := childInfo{mode: st.Mode & syscall.S_IFMT, ino: n.v.newUpperIno(st), upper: true, opaque: opaque, st: *st}
	statToAttr(st, &out.Attr)
	cn := &node{v: n.v, dirfd: -1, anonFd: -1}
	cn.setState(&ci, n.v.epoch)
	return n.NewInode(ctx, cn, gofs.StableAttr{Mode: ci.mode, Ino: ci.ino})
}

// appendFlag is the O_APPEND of an open's flags, for the descriptor a
// CREATE or O_TMPFILE makes: none in no-open mode, where that descriptor
// becomes the node's inode writer, which every writer shares at the
// kernel's offsets.
func (f *FS) appendFlag(flags uint32) int {
	if !f.opts.OpenHandles {
		return 0
	}
	return int(flags & syscall.O_APPEND)
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (_ *gofs.Inode, _ gofs.FileHandle, _ uint32, e syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, nil, 0, e
	}
	defer unlock()
	defer n.v.noteIf(&e, n.childPath(name))
	fd := -1
	appendFlag := v.fs.appendFlag(flags)
	e = v.place(pfd, name, false, func(dfd int, nm string) error {
		f, err := unix.Openat(dfd, nm, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|appendFlag, 0o600)
		if err != nil {
			return err
		}
		fd = f
		if err := unix.Fchmod(fd, mode&0o7777); err != nil {
			return err
		}
		v.own(ctx, dfd, nm)
		return nil
	})
	if e != 0 {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, nil, 0, e
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, nil, 0, errnoOf(err)
	}
	ch := n.newNode(ctx, &st, false, out)
	cn, _ := ch.Operations().(*node)
	if cn != nil && !v.fs.opts.OpenHandles {
		// Once the kernel has learned that OPEN is not implemented it
		// sends no RELEASE for a CREATE's handle either: a handle would
		// keep fd for good. The node keeps it instead, until forgotten.
		cn.takeWriter(fd, n.childPath(name))
		return ch, nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	if cn == nil {
		cn = n
	}
	uf := cn.newUpperFile(fd)
	if v.ws != nil {
		v.journal.opened(uf, n.childPath(name), false) // a new file
	}
	return ch, uf, fuse.FOPEN_KEEP_CACHE, 0
}

// Tmpfile makes an unnamed file in this directory (open(2) with O_TMPFILE)
// in the upper layer; it gets a name if linked into place.
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	v := n.v
	if v.readonly {
		return nil, nil, 0, syscall.EROFS
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return nil, nil, 0, e
	}
	if e := n.copyUp(true); e != 0 {
		return nil, nil, 0, e
	}
	pfd, done, e := n.dirFd()
	if e != 0 {
		return nil, nil, 0, e
	}
	defer done()
	fd, err := unix.Openat(pfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC|v.fs.appendFlag(flags), 0o600)
	if err != nil {
		return nil, nil, 0, errnoOf(err)
	}
	err = unix.Fchmod(fd, mode&0o7777)
	if err == nil {
		if uid, gid, ok := caller(ctx); ok {
			err = v.layer.OwnFD(fd, uid, gid)
		}
	}
	var st unix.Stat_t
	if err == nil {
		err = unix.Fstat(fd, &st)
	}
	var keep int
	if err == nil {
		keep, err = unix.Dup(fd)
	}
	if err != nil {
		unix.Close(fd)
		return nil, nil, 0, errnoOf(err)
	}
	ch := n.newNode(ctx, &st, false, out)
	cn, _ := ch.Operations().(*node)
	if cn == nil {
		unix.Close(keep)
		unix.Close(fd)
		return nil, nil, 0, syscall.EIO
	}
	cn.mu.Lock()
	cn.anonFd = int32(keep)
	cn.mu.Unlock()
	if !v.fs.opts.OpenHandles {
		// No RELEASE would come for a handle (Create): the node keeps fd,
		// within the fd budget, since the file has no name to be opened
		// by again: past it, no more O_TMPFILE files (ENFILE), rather
		// than a user holding many making the daemon run out.
		if _, kept := cn.keepWriter(fd, ""); !kept {
			cn.mu.Lock()
			cn.anonFd = -1
			cn.mu.Unlock()
			unix.Close(keep)
			unix.Close(fd)
			return nil, nil, 0, syscall.ENFILE
		}
		cn.io.markDetached() // no name: its attributes come from fd
		return ch, nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	return ch, cn.newUpperFile(fd), fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (_ *gofs.Inode, e syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	defer n.v.noteIf(&e, n.childPath(name))
	var st unix.Stat_t
	e = v.place(pfd, name, true, func(dfd int, nm string) error {
		if err := unix.Mkdirat(dfd, nm, 0o700); err != nil {
			return err
		}
		fd, err := workspace.OpenDir(dfd, nm)
		if err == nil {
			err = unix.Fchmod(fd, mode&0o7777)
			if err == nil {
				// A new directory never shows a lower one through.
				err = v.layer.SetOpaque(fd)
			}
			if err == nil {
				err = unix.Fstat(fd, &st)
			}
			unix.Close(fd)
		}
		if err != nil {
			unix.Unlinkat(dfd, nm, unix.AT_REMOVEDIR)
			return err
		}
		v.own(ctx, dfd, nm)
		return nil
	})
	if e != 0 {
		return nil, e
	}
	st2, err := workspace.Lstat(pfd, name)
	if err == nil {
		st = st2
	}
	return n.newNode(ctx, &st, true, out), 0
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (_ *gofs.Inode, e syscall.Errno) {
	v := n.v
	if v.readonly {
		return nil, syscall.EROFS
	}
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFREG:
		dev = 0
	case syscall.S_IFCHR, syscall.S_IFBLK:
		// The kernel sends a device node only for a caller with
		// CAP_MKNOD, and for anyone a character device 0/0 (a
		// "whiteout"), which the upper layer uses to record deletions
		// (as overlayfs does): that one it cannot hold as a file.
		if mode&syscall.S_IFMT == syscall.S_IFCHR && dev == 0 {
			return nil, syscall.EPERM
		}
	default:
		return nil, syscall.EINVAL
	}
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	defer n.v.noteIf(&e, n.childPath(name))
	return n.addEntry(ctx, pfd, name, out, func(dfd int, nm string) error {
		if err := unix.Mknodat(dfd, nm, mode&syscall.S_IFMT|0o600, int(dev)); err != nil {
			return err
		}
		if err := workspace.ChmodAt(dfd, nm, mode&0o7777); err != nil {
			unix.Unlinkat(dfd, nm, 0)
			return err
		}
		v.own(ctx, dfd, nm)
		return nil
	})
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (_ *gofs.Inode, e syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	defer n.v.noteIf(&e, n.childPath(name))
	return n.addEntry(ctx, pfd, name, out, func(dfd int, nm string) error {
		if err := unix.Symlinkat(target, dfd, nm); err != nil {
			return err
		}
		v.own(ctx, dfd, nm)
		return nil
	})
}

// addEntry places the non-directory entry that make creates as name in
// pfd (see place) and returns its node.
func (n *node) addEntry(ctx context.Context, pfd int, name string, out *fuse.EntryOut, make func(dfd int, nm string) error) (*gofs.Inode, syscall.Errno) {
	if e := n.v.place(pfd, name, false, make); e != 0 {
		return nil, e
	}
	st, err := workspace.Lstat(pfd, name)
	if err != nil {
		return nil, errnoOf(err)
	}
	return n.newNode(ctx, &st, false, out), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (_ *gofs.Inode, e syscall.Errno) {
	v := n.v
	if v.readonly {
		return nil, syscall.EROFS
	}
	tn, ok := target.(*node)
	if !ok || tn.v != v {
		return nil, syscall.EXDEV
	}
	if kindIsDir(tn) {
		return nil, syscall.EPERM
	}
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	defer n.v.noteIf(&e, n.childPath(name))
	tn.mu.Lock()
	anon := int(tn.anonFd)
	tn.mu.Unlock()
	if p, _ := tn.parent(); p == nil && anon >= 0 {
		// An O_TMPFILE file getting its first name.
		e = v.place(pfd, name, false, func(dfd int, nm string) error {
			return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(anon), dfd, nm, unix.AT_SYMLINK_FOLLOW)
		})
	} else {
		if e := tn.copyUp(true); e != 0 {
			return nil, e
		}
		tpfd, tname, tdone, e := tn.loc()
		if e != 0 {
			return nil, e
		}
		defer tdone()
		e = v.place(pfd, name, false, func(dfd int, nm string) error {
			return unix.Linkat(tpfd, tname, dfd, nm, 0)
		})
	}
	if e != 0 {
		return nil, e
	}
	st, err := workspace.Lstat(pfd, name)
	if err != nil {
		return nil, errnoOf(err)
	}
	if v.ws != nil && st.Nlink > 1 {
		v.journal.linkedTo(tn) // its writers now write both names
	}
	statToAttr(&st, &out.Attr)
	return tn.EmbeddedInode(), 0
}
