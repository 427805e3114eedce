//go:build linux

package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Handlers that take a name away or move it: Unlink, Rmdir, Rename. Each
// holds v.mu for writing and changes the upper layer in atomic steps
// (whiteouts, moves with RENAME_WHITEOUT or RENAME_EXCHANGE).

// lockChange starts a handler that changes the view: it refuses read-only
// views and removed workspaces, and takes v.mu for writing; unlock
// releases it.
func (n *node) lockChange() (unlock func(), e syscall.Errno) {
	v := n.v
	if v.readonly {
		return nil, syscall.EROFS
	}
	v.mu.Lock()
	if e := n.live(); e != 0 {
		v.mu.Unlock()
		return nil, e
	}
	return v.mu.Unlock, 0
}

// prepareRemove readies directory n to lose name: whether the lower layer
// has it (a whiteout must then take its place), n made an upper directory,
// and its descriptor. Caller holds v.mu for writing.
func (n *node) prepareRemove(name string) (pfd int, lowerHas bool, done func(), e syscall.Errno) {
	lowerHas = n.lowerHas(n.state(), name)
	if e := n.copyUp(true); e != 0 {
		return -1, false, noop, e
	}
	pfd, done, e = n.dirFd()
	return pfd, lowerHas, done, e
}

// holdChild lets the node the kernel knows as n's child name (found as
// ci), if any, keep its upper file, about to be removed or replaced
// (holdDetached). A removed lower file keeps reading its blob; it is
// marked detached too, so that fstat shows no link to it and a write to
// it fails (EBADF) instead of looking for a name to copy it up to.
func (n *node) holdChild(pfd int, name string, ci *childInfo) {
	ch := n.GetChild(name)
	if ch == nil || ch.StableAttr().Ino != ci.ino {
		return
	}
	cn, ok := ch.Operations().(*node)
	if !ok || cn.v != n.v {
		return
	}
	if ci.upper {
		cn.holdDetached(pfd, name)
		return
	}
	if ci.mode == syscall.S_IFREG {
		// Its name shows it again only as a new inode: ws update
		// discards the whiteout with a new inode number (reissue).
		cn.io.markDetached()
	}
}

func (n *node) Unlink(ctx context.Context, name string) (e syscall.Errno) {
	v := n.v
	unlock, e := n.lockChange()
	if e != 0 {
		return e
	}
	defer unlock()
	defer v.noteIf(&e, n.childPath(name))
	ci, e := n.lookupChild(name)
	if e != 0 {
		return e
	}
	if ci.mode == syscall.S_IFDIR {
		return syscall.EISDIR
	}
	pfd, lowerHas, done, e := n.prepareRemove(name)
	if e != 0 {
		return e
	}
	defer done()
	n.holdChild(pfd, name, &ci)
	switch {
	case ci.upper && lowerHas:
		return errnoOf(v.layer.Whiteout(pfd, name, true))
	case ci.upper:
		return errnoOf(unix.Unlinkat(pfd, name, 0))
	default:
		return errnoOf(v.layer.Whiteout(pfd, name, false))
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
		fd, err := workspace.OpenDir(pfd, name)
		done()
		if err != nil {
			return false, errnoOf(err)
		}
		names, err := workspace.ReadDirNames(fd)
		if err != nil {
			unix.Close(fd)
			return false, errnoOf(err)
		}
		for _, nm := range names {
			st, err := workspace.Lstat(fd, nm)
			if err != nil {
				continue
			}
			if !workspace.IsWhiteout(&st) {
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
		return false, v.lowerErrno("tree", ci.lowerPath, err)
	}
	for _, e := range entries {
		if !inUpper[e.Name] {
			return false, 0
		}
	}
	return true, 0
}

func (n *node) Rmdir(ctx context.Context, name string) (e syscall.Errno) {
	v := n.v
	unlock, e := n.lockChange()
	if e != 0 {
		return e
	}
	defer unlock()
	defer v.noteIf(&e, dirPath(n.childPath(name)))
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
	pfd, lowerHas, done, e := n.prepareRemove(name)
	if e != 0 {
		return e
	}
	defer done()
	if !ci.upper {
		return errnoOf(v.layer.Whiteout(pfd, name, false))
	}
	return errnoOf(v.layer.RemoveDir(pfd, name, lowerHas))
}

func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) (e syscall.Errno) {
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
	from, to := n.childPath(name), np.childPath(newName)
	if ch := n.GetChild(name); ch != nil && ch.StableAttr().Mode == syscall.S_IFDIR {
		from, to = dirPath(from), dirPath(to)
	}
	defer v.noteIf(&e, from, to)
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
		if err := v.layer.CopyUp(v.snap, spfd, name, src.lower, src.lowerPath, src.ino, true, v.lowerTime(src.lowerPath)); err != nil {
			return v.errno("copy-up", src.lowerPath, err)
		}
	}
	if srcDir && !src.opaque {
		// Its lower layer must follow it: record where it is.
		if err := v.layer.MarkMoved(spfd, name, src.lowerPath, src.hasLowerPath); err != nil {
			return errnoOf(err)
		}
	}
	if de == 0 && dst.mode != syscall.S_IFDIR {
		np.holdChild(dpfd, newName, &dst)
	}
	if de == 0 && dst.upper && dst.mode == syscall.S_IFDIR {
		workspace.ClearDir(dpfd, newName) // empty as seen, but may hold whiteouts
	}
	srcLower := n.lowerHas(n.state(), name)
	if err := v.layer.Move(spfd, name, dpfd, newName, srcDir, srcLower); err != nil {
		return errnoOf(err)
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
