package fs

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
)

// All methods here change the upper layer: they hold v.mu for writing, and
// make each change with one atomic step on disk (an entry is prepared under
// a temp name in work/ and renamed into place), so that a crash leaves
// either the old or the new state.

func caller(ctx context.Context) (uint32, uint32, bool) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid, true
	}
	return 0, 0, false
}

// own gives a new entry to the calling user (only a root daemon can).
func (v *view) own(ctx context.Context, dfd int, name string) {
	if !v.fs.isRoot {
		return
	}
	if uid, gid, ok := caller(ctx); ok {
		unix.Fchownat(dfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
	}
}

// keepTimes restores a directory's times after a change that does not
// change its content as the user sees it (a copy-up into it).
func keepTimes(fd int) func() {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return noop
	}
	return func() {
		ts := [2]unix.Timespec{st.Atim, st.Mtim}
		futimens(fd, &ts)
	}
}

// copyUp makes n an upper entry (a merged directory for a lower directory,
// a full copy for a file unless withData is false). Caller holds v.mu for
// writing.
func (n *node) copyUp(withData bool) syscall.Errno {
	v := n.v
	if v.readonly || v.upperFd < 0 {
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
	if e := v.copyUpEntry(pfd, name, st.lower, st.lowerPath, n.StableAttr().Ino, withData); e != 0 {
		return e
	}
	n.mu.Lock()
	n.upper = true
	if kindMode(st.lower.Kind) != syscall.S_IFDIR {
		n.hasLower, n.hasLowerPath = false, false
	}
	n.mu.Unlock()
	return 0
}

// copyUpEntry writes lower entry e as name in the upper directory pfd.
func (v *view) copyUpEntry(pfd int, name string, e snapshot.Entry, lowerPath string, ino uint64, withData bool) syscall.Errno {
	wfd := v.workFd
	tmp := tmpName()
	fail := func(err error) syscall.Errno {
		removeAllAt(wfd, tmp)
		return errno(err)
	}
	switch kindMode(e.Kind) {
	case syscall.S_IFDIR:
		if err := unix.Mkdirat(wfd, tmp, 0o700); err != nil {
			return fail(err)
		}
		if err := chmodAt(wfd, tmp, 0o755); err != nil {
			return fail(err)
		}
	case syscall.S_IFLNK:
		target, err := v.snap.ReadLink(e.ID)
		if err != nil {
			v.ioError("copy-up", lowerPath, err)
			return syscall.EIO
		}
		if err := unix.Symlinkat(target, wfd, tmp); err != nil {
			return fail(err)
		}
	default:
		fd, err := unix.Openat(wfd, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fail(err)
		}
		dst := os.NewFile(uintptr(fd), tmp)
		if withData {
			if err := v.copyBlob(dst, e, lowerPath); err != nil {
				dst.Close()
				if errno(err) == syscall.EIO {
					removeAllAt(wfd, tmp)
					return syscall.EIO
				}
				return fail(err)
			}
		}
		mode := uint32(0o644)
		if e.Kind == snapshot.Executable {
			mode = 0o755
		}
		err = unix.Fchmod(fd, mode)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
	}
	if v.fs.isRoot {
		unix.Fchownat(wfd, tmp, int(v.uid), int(v.gid), unix.AT_SYMLINK_NOFOLLOW)
	}
	// Best effort: without it the entry gets a new inode number on restart.
	setXattr(wfd, tmp, v.fs.xp+xIno, strconv.FormatUint(ino, 10))
	if kindMode(e.Kind) != syscall.S_IFDIR {
		setXattr(wfd, tmp, v.fs.xp+xOrigin, lowerPath)
	}
	if err := utimesAt(wfd, tmp, v.commitTime()); err != nil {
		return fail(err)
	}
	restore := keepTimes(pfd)
	if err := renameNoReplace(wfd, tmp, pfd, name); err != nil {
		return fail(err)
	}
	restore()
	return 0
}

func (v *view) copyBlob(dst *os.File, e snapshot.Entry, lowerPath string) error {
	b, err := v.snap.Open(e.ID)
	if err != nil {
		v.ioError("copy-up", lowerPath, err)
		return syscall.EIO
	}
	defer b.Close()
	var src io.Reader = io.NewSectionReader(b, 0, b.Size())
	if f := snapshot.BlobFile(b); f != nil {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			src = f // lets io.Copy use copy_file_range
		}
	}
	n, err := io.Copy(dst, src)
	if err != nil {
		var se syscall.Errno
		if ok := asErrno(err, &se); ok {
			return se // ENOSPC and friends go to the writer
		}
		v.ioError("copy-up", lowerPath, err)
		return syscall.EIO
	}
	if n != b.Size() {
		v.ioError("copy-up", lowerPath, io.ErrUnexpectedEOF)
		return syscall.EIO
	}
	return nil
}

func asErrno(err error, out *syscall.Errno) bool {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			*out = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// place creates an entry name in the upper directory pfd with mk, replacing
// a whiteout there atomically. It fails with EEXIST if a real entry exists.
func (v *view) place(pfd int, name string, isDir bool, mk func(dfd int, nm string) error) syscall.Errno {
	st, err := lstatAt(pfd, name)
	if err == nil && !isWhiteout(&st) {
		return syscall.EEXIST
	}
	if err != nil && err != unix.ENOENT {
		return errno(err)
	}
	if err != nil {
		return errno(mk(pfd, name))
	}
	tmp := tmpName()
	if err := mk(v.workFd, tmp); err != nil {
		return errno(err)
	}
	if isDir {
		// A directory cannot replace a non-directory by rename: swap them.
		if err := unix.Renameat2(v.workFd, tmp, pfd, name, unix.RENAME_EXCHANGE); err != nil {
			removeAllAt(v.workFd, tmp)
			return errno(err)
		}
		unix.Unlinkat(v.workFd, tmp, 0)
		return 0
	}
	if err := unix.Renameat(v.workFd, tmp, pfd, name); err != nil {
		removeAllAt(v.workFd, tmp)
		return errno(err)
	}
	return 0
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
	ci := childInfo{mode: st.Mode & syscall.S_IFMT, ino: hashIno(n.v.id, "U", strconv.FormatUint(st.Ino, 10)), upper: true, opaque: opaque, st: *st}
	statToAttr(st, &out.Attr)
	cn := &node{v: n.v, dirfd: -1, anonFd: -1}
	cn.setState(&ci, n.v.epoch)
	return n.NewInode(ctx, cn, gofs.StableAttr{Mode: ci.mode, Ino: ci.ino})
}

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, nil, 0, e
	}
	defer unlock()
	fd := -1
	e = v.place(pfd, name, false, func(dfd int, nm string) error {
		f, err := unix.Openat(dfd, nm, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|int(flags&syscall.O_APPEND), 0o600)
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
		return nil, nil, 0, errno(err)
	}
	ch := n.newNode(ctx, &st, false, out)
	cn, _ := ch.Operations().(*node)
	if cn == nil {
		cn = n
	}
	return ch, cn.newUpperFile(fd), fuse.FOPEN_KEEP_CACHE, 0
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
	fd, err := unix.Openat(pfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC|int(flags&syscall.O_APPEND), 0o600)
	if err != nil {
		return nil, nil, 0, errno(err)
	}
	err = unix.Fchmod(fd, mode&0o7777)
	if err == nil && v.fs.isRoot {
		if uid, gid, ok := caller(ctx); ok {
			err = unix.Fchown(fd, int(uid), int(gid))
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
		return nil, nil, 0, errno(err)
	}
	ch := n.newNode(ctx, &st, false, out)
	cn, _ := ch.Operations().(*node)
	if cn == nil {
		unix.Close(keep)
		unix.Close(fd)
		return nil, nil, 0, syscall.EIO
	}
	cn.mu.Lock()
	cn.anonFd = keep
	cn.mu.Unlock()
	return ch, cn.newUpperFile(fd), fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	var st unix.Stat_t
	e = v.place(pfd, name, true, func(dfd int, nm string) error {
		if err := unix.Mkdirat(dfd, nm, 0o700); err != nil {
			return err
		}
		fd, err := openDirAt(dfd, nm)
		if err == nil {
			err = unix.Fchmod(fd, mode&0o7777)
			if err == nil {
				// A new directory never shows a lower one through.
				err = unix.Fsetxattr(fd, v.fs.xp+xOpaque, []byte("y"), 0)
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
	st2, err := lstatAt(pfd, name)
	if err == nil {
		st = st2
	}
	return n.newNode(ctx, &st, true, out), 0
}

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	v := n.v
	if v.readonly {
		return nil, syscall.EROFS
	}
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFREG:
	default:
		return nil, syscall.EPERM // no device nodes in a workspace (0/0 is a whiteout)
	}
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
	return n.addEntry(ctx, pfd, name, out, func(dfd int, nm string) error {
		if err := unix.Mknodat(dfd, nm, mode&syscall.S_IFMT|0o600, 0); err != nil {
			return err
		}
		if err := chmodAt(dfd, nm, mode&0o7777); err != nil {
			unix.Unlinkat(dfd, nm, 0)
			return err
		}
		v.own(ctx, dfd, nm)
		return nil
	})
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	v := n.v
	pfd, unlock, e := n.lockNewEntry(name)
	if e != 0 {
		return nil, e
	}
	defer unlock()
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
	st, err := lstatAt(pfd, name)
	if err != nil {
		return nil, errno(err)
	}
	return n.newNode(ctx, &st, false, out), 0
}

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
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
	tn.mu.Lock()
	anon := tn.anonFd
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
	st, err := lstatAt(pfd, name)
	if err != nil {
		return nil, errno(err)
	}
	statToAttr(&st, &out.Attr)
	return tn.EmbeddedInode(), 0
}

// whiteoutAt replaces name in pfd (absent, or a non-directory) by a whiteout.
func (v *view) whiteoutAt(pfd int, name string, replace bool) syscall.Errno {
	if !replace {
		return errno(unix.Mknodat(pfd, name, syscall.S_IFCHR, 0))
	}
	tmp := tmpName()
	if err := unix.Mknodat(v.workFd, tmp, syscall.S_IFCHR, 0); err != nil {
		return errno(err)
	}
	if err := unix.Renameat(v.workFd, tmp, pfd, name); err != nil {
		unix.Unlinkat(v.workFd, tmp, 0)
		return errno(err)
	}
	return 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return e
	}
	ci, e := n.lookupChild(name)
	if e != 0 {
		return e
	}
	if ci.mode == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	lowerHas := n.lowerHas(n.state(), name)
	if e := n.copyUp(true); e != 0 {
		return e
	}
	pfd, done, e := n.dirFd()
	if e != 0 {
		return e
	}
	defer done()
	switch {
	case ci.upper && lowerHas:
		return v.whiteoutAt(pfd, name, true)
	case ci.upper:
		return errno(unix.Unlinkat(pfd, name, 0))
	default:
		return v.whiteoutAt(pfd, name, false)
	}
}

// dirEmpty reports whether directory name of n (found as ci) shows no entry.
func (n *node) dirEmpty(name string, ci *childInfo) (bool, syscall.Errno) {
	v := n.v
	inUpper := map[string]bool{}
	if ci.upper {
		pfd, done, e := n.dirFd()
		if e != 0 {
			return false, e
		}
		fd, err := openDirAt(pfd, name)
		done()
		if err != nil {
			return false, errno(err)
		}
		names, err := readDirNames(fd)
		if err != nil {
			unix.Close(fd)
			return false, errno(err)
		}
		for _, nm := range names {
			st, err := lstatAt(fd, nm)
			if err != nil {
				continue
			}
			if !isWhiteout(&st) {
				unix.Close(fd)
				return false, 0
			}
			inUpper[nm] = true
		}
		unix.Close(fd)
	}
	if ci.opaque || !ci.hasLower || ci.lower.Kind != snapshot.Dir {
		return true, 0
	}
	entries, err := v.snap.Tree(ci.lower.ID)
	if err != nil {
		v.ioError("tree", ci.lowerPath, err)
		return false, syscall.EIO
	}
	for _, e := range entries {
		if !inUpper[e.Name] {
			return false, 0
		}
	}
	return true, 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return e
	}
	ci, e := n.lookupChild(name)
	if e != 0 {
		return e
	}
	if ci.mode != syscall.S_IFDIR {
		return syscall.ENOTDIR
	}
	if empty, e := n.dirEmpty(name, &ci); e != 0 {
		return e
	} else if !empty {
		return syscall.ENOTEMPTY
	}
	lowerHas := n.lowerHas(n.state(), name)
	if e := n.copyUp(true); e != 0 {
		return e
	}
	pfd, done, e := n.dirFd()
	if e != 0 {
		return e
	}
	defer done()
	if !ci.upper {
		return v.whiteoutAt(pfd, name, false)
	}
	tmp := tmpName()
	if lowerHas {
		if err := unix.Mknodat(v.workFd, tmp, syscall.S_IFCHR, 0); err != nil {
			return errno(err)
		}
		if err := unix.Renameat2(v.workFd, tmp, pfd, name, unix.RENAME_EXCHANGE); err != nil {
			unix.Unlinkat(v.workFd, tmp, 0)
			return errno(err)
		}
	} else if err := unix.Renameat(pfd, name, v.workFd, tmp); err != nil {
		return errno(err)
	}
	if err := removeAllAt(v.workFd, tmp); err != nil {
		v.fs.log.Warn("gitfs: cleaning removed directory", "workspace", v.name, "err", err)
	}
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	np, ok := newParent.(*node)
	if !ok || np.v != v {
		return syscall.EXDEV
	}
	if flags&^uint32(unix.RENAME_NOREPLACE) != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT are not supported
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return e
	}
	src, e := n.lookupChild(name)
	if e != 0 {
		return e
	}
	dst, de := np.lookupChild(newName)
	if de != 0 && de != syscall.ENOENT {
		return de
	}
	srcDir := src.mode == syscall.S_IFDIR
	if de == 0 {
		if flags&unix.RENAME_NOREPLACE != 0 {
			return syscall.EEXIST
		}
		if src.ino == dst.ino {
			return 0 // two names of one file: nothing to do
		}
		dstDir := dst.mode == syscall.S_IFDIR
		if srcDir && !dstDir {
			return syscall.ENOTDIR
		}
		if !srcDir && dstDir {
			return syscall.EISDIR
		}
		if dstDir {
			if empty, e := np.dirEmpty(newName, &dst); e != 0 {
				return e
			} else if !empty {
				return syscall.ENOTEMPTY
			}
		}
	}
	if e := n.copyUp(true); e != 0 {
		return e
	}
	if e := np.copyUp(true); e != 0 {
		return e
	}
	spfd, sdone, e := n.dirFd()
	if e != 0 {
		return e
	}
	defer sdone()
	dpfd, ddone, e := np.dirFd()
	if e != 0 {
		return e
	}
	defer ddone()
	// The source becomes an upper entry at its place first.
	if !src.upper {
		if e := v.copyUpEntry(spfd, name, src.lower, src.lowerPath, src.ino, true); e != 0 {
			return e
		}
	}
	if srcDir && !src.opaque {
		// Its lower layer must follow it: record where it is.
		var err error
		if src.hasLowerPath {
			err = setXattr(spfd, name, v.fs.xp+xRedirect, src.lowerPath)
		} else {
			err = setXattr(spfd, name, v.fs.xp+xOpaque, "y")
		}
		if err != nil {
			return errno(err)
		}
	}
	if de == 0 && dst.upper && dst.mode == syscall.S_IFDIR {
		// Empty as seen, but may hold whiteouts.
		fd, err := openDirAt(dpfd, newName)
		if err == nil {
			names, _ := readDirNames(fd)
			for _, nm := range names {
				removeAllAt(fd, nm)
			}
			unix.Close(fd)
		}
	}
	srcLower := n.lowerHas(n.state(), name)
	dst2, derr := lstatAt(dpfd, newName)
	dstWhiteout := derr == nil && isWhiteout(&dst2)
	var err error
	switch {
	case srcDir && dstWhiteout:
		err = unix.Renameat2(spfd, name, dpfd, newName, unix.RENAME_EXCHANGE)
		if err == nil && !srcLower {
			unix.Unlinkat(spfd, name, 0)
		}
	case srcLower:
		err = unix.Renameat2(spfd, name, dpfd, newName, unix.RENAME_WHITEOUT)
		if err == unix.EINVAL {
			if err = unix.Renameat(spfd, name, dpfd, newName); err == nil {
				err = unix.Mknodat(spfd, name, syscall.S_IFCHR, 0)
			}
		}
	default:
		err = unix.Renameat(spfd, name, dpfd, newName)
	}
	if err != nil {
		return errno(err)
	}
	if ch := n.GetChild(name); ch != nil && ch.StableAttr().Ino == src.ino {
		if cn, ok := ch.Operations().(*node); ok {
			if ci, e := np.lookupChild(newName); e == 0 {
				cn.setState(&ci, v.epoch)
			}
		}
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	uf, _ := f.(*upperFile)
	v.mu.Lock()
	defer v.mu.Unlock()
	if uf == nil {
		if e := n.live(); e != 0 {
			return e
		}
		size, hasSize := in.GetSize()
		if e := n.copyUp(!(hasSize && size == 0)); e != 0 {
			return e
		}
	}
	mode, hasMode := in.GetMode()
	uid, hasUID := in.GetUID()
	gid, hasGID := in.GetGID()
	size, hasSize := in.GetSize()
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	hasTimes := false
	if in.Valid&fuse.FATTR_ATIME != 0 {
		hasTimes = true
		if in.Valid&fuse.FATTR_ATIME_NOW != 0 {
			ts[0] = unix.Timespec{Nsec: unix.UTIME_NOW}
		} else {
			ts[0] = unix.Timespec{Sec: int64(in.Atime), Nsec: int64(in.Atimensec)}
		}
	}
	if in.Valid&fuse.FATTR_MTIME != 0 {
		hasTimes = true
		if in.Valid&fuse.FATTR_MTIME_NOW != 0 {
			ts[1] = unix.Timespec{Nsec: unix.UTIME_NOW}
		} else {
			ts[1] = unix.Timespec{Sec: int64(in.Mtime), Nsec: int64(in.Mtimensec)}
		}
	}
	cu, cg := -1, -1
	if hasUID {
		cu = int(uid)
	}
	if hasGID {
		cg = int(gid)
	}
	var err error
	if uf != nil || kindIsDir(n) {
		fd := -1
		if uf != nil {
			fd = uf.fd
		} else {
			dfd, done, e := n.dirFd()
			if e != 0 {
				return e
			}
			defer done()
			fd = dfd
		}
		if hasMode {
			err = unix.Fchmod(fd, mode)
		}
		if err == nil && (hasUID || hasGID) {
			err = unix.Fchown(fd, cu, cg)
		}
		if err == nil && hasSize {
			if uf == nil {
				err = syscall.EISDIR
			} else {
				err = unix.Ftruncate(fd, int64(size))
			}
		}
		if err == nil && hasTimes {
			err = futimens(fd, &ts)
		}
		if err != nil {
			return errno(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errno(err)
		}
		statToAttr(&st, &out.Attr)
		return 0
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return e
	}
	defer done()
	isLink := n.StableAttr().Mode == syscall.S_IFLNK
	if hasMode && !isLink {
		err = chmodAt(pfd, name, mode)
	}
	if err == nil && (hasUID || hasGID) {
		err = unix.Fchownat(pfd, name, cu, cg, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err == nil && hasSize {
		var fd int
		// O_NONBLOCK: a FIFO must not hang the daemon (truncate then fails).
		fd, err = unix.Openat(pfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Ftruncate(fd, int64(size))
			unix.Close(fd)
		}
	}
	if err == nil && hasTimes {
		err = unix.UtimesNanoAt(pfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return errno(err)
	}
	st, err := lstatAt(pfd, name)
	if err != nil {
		return errno(err)
	}
	statToAttr(&st, &out.Attr)
	return 0
}

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
	pfd, name, done, e := n.loc()
	if e != 0 {
		return nil, 0, e
	}
	defer done()
	fl := int(flags)&^(unix.O_CREAT|unix.O_EXCL|unix.O_DIRECT|unix.O_NOCTTY) | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(pfd, name, fl, 0)
	if err != nil {
		return nil, 0, errno(err)
	}
	return n.newUpperFile(fd), fuse.FOPEN_KEEP_CACHE, 0
}

// Extended attributes: only upper entries have them. The layer's own
// records (PREFIX*) are invisible and cannot be set.

func (v *view) reservedXattr(attr string) bool {
	return strings.HasPrefix(attr, "trusted.gitfs.") || strings.HasPrefix(attr, "user.gitfs.")
}

// xattrTarget returns (dfd, name) for the node's upper entry: name == "" for
// a directory, whose own descriptor is returned. Caller holds v.mu.
func (n *node) xattrTarget() (int, string, func(), syscall.Errno) {
	if kindIsDir(n) {
		fd, done, e := n.dirFd()
		return fd, "", done, e
	}
	return n.loc()
}

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v := n.v
	v.fs.stats.getxattrs.Add(1)
	if v.reservedXattr(attr) {
		return 0, syscall.ENODATA
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return 0, e
	}
	if !n.state().upper || v.upperFd < 0 {
		return 0, syscall.ENODATA
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return 0, e
	}
	defer done()
	var k int
	var err error
	if name == "" {
		k, err = unix.Fgetxattr(dfd, attr, dest)
	} else {
		k, err = unix.Lgetxattr(procPath(dfd, name), attr, dest)
	}
	if err != nil {
		return uint32(k), errno(err)
	}
	return uint32(k), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	v := n.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return 0, e
	}
	if !n.state().upper || v.upperFd < 0 {
		return 0, 0
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return 0, e
	}
	defer done()
	buf := make([]byte, 64<<10)
	var k int
	var err error
	if name == "" {
		k, err = unix.Flistxattr(dfd, buf)
	} else {
		k, err = unix.Llistxattr(procPath(dfd, name), buf)
	}
	if err != nil {
		return 0, errno(err)
	}
	var outb []byte
	for _, a := range strings.Split(string(buf[:k]), "\x00") {
		if a == "" || v.reservedXattr(a) {
			continue
		}
		outb = append(outb, a...)
		outb = append(outb, 0)
	}
	if len(dest) == 0 {
		return uint32(len(outb)), 0
	}
	if len(dest) < len(outb) {
		return uint32(len(outb)), syscall.ERANGE
	}
	return uint32(copy(dest, outb)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	if v.reservedXattr(attr) {
		return syscall.EPERM
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return e
	}
	if e := n.copyUp(true); e != 0 {
		return e
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return e
	}
	defer done()
	if name == "" {
		return errno(unix.Fsetxattr(dfd, attr, data, int(flags)))
	}
	return errno(unix.Lsetxattr(procPath(dfd, name), attr, data, int(flags)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	if v.reservedXattr(attr) {
		return syscall.ENODATA
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := n.live(); e != 0 {
		return e
	}
	if !n.state().upper {
		return syscall.ENODATA
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return e
	}
	defer done()
	if name == "" {
		return errno(unix.Fremovexattr(dfd, attr))
	}
	return errno(unix.Lremovexattr(procPath(dfd, name), attr))
}
