//go:build linux

package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/workspace"
)

// Setattr: chmod, chown, truncate and utimes. An unchanged entry is copied
// up first (without its data when truncated to 0). Through a handle the
// calls go to its descriptor; otherwise to the entry by name, never
// following a link.
func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) (e syscall.Errno) {
	v := n.v
	if v.readonly {
		return syscall.EROFS
	}
	uf, _ := f.(*upperFile)
	if fd := n.io.detachedFd(); uf == nil && fd >= 0 {
		// No name to reach the file by (holdDetached): its descriptor.
		uf = &upperFile{n: n, fd: fd}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	defer v.noteIf(&e, n.relPath())
	defer func() {
		// A chmod or truncate through one name of a file with hard links
		// changes the others too (journal.go's allChanged).
		if e == 0 && v.ws != nil && out.Nlink > 1 && !kindIsDir(n) {
			v.journal.note(allChanged)
		}
	}()
	if e := n.refusePinned(); e != 0 {
		return e
	}
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
			err = workspace.Futimens(fd, &ts)
		}
		if err != nil {
			return errnoOf(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return errnoOf(err)
		}
		statToAttr(&st, &out.Attr)
		if uf == nil { // a directory: its link count (attr.go)
			var e syscall.Errno
			if out.Attr.Nlink, e = n.upperDirNlink(fd, &st, n.state()); e != 0 {
				return e
			}
		}
		return 0
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return e
	}
	defer done()
	isLink := n.StableAttr().Mode == syscall.S_IFLNK
	if hasMode && !isLink {
		err = workspace.ChmodAt(pfd, name, mode)
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
		return errnoOf(err)
	}
	st, err := workspace.Lstat(pfd, name)
	if err != nil {
		return errnoOf(err)
	}
	statToAttr(&st, &out.Attr)
	return 0
}
