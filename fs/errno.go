//go:build linux

package fs

import (
	"errors"
	"os"
	"syscall"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// errno turns an error into the errno the kernel gets: this is the one
// place where that happens. A system call's own errno passes through
// (ENOSPC, EEXIST, ...). Anything else means the daemon could not read what
// it serves — an object of the snapshot, a refused tree — and becomes EIO,
// logged with the operation and path, since the caller sees only the
// number.
func (v *view) errno(op, path string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var lower *workspace.LowerError
	var refused *snapshot.RefusedError
	var e syscall.Errno
	switch {
	case errors.As(err, &lower), errors.As(err, &refused):
	case errors.As(err, &e):
		return e
	case errors.Is(err, os.ErrNotExist):
		return syscall.ENOENT
	}
	v.fs.log.Error("gitfs: object unreadable, returning EIO", "view", v.name, "op", op, "path", path, "err", err)
	return syscall.EIO
}

// lowerErrno is errno for a failure to read the snapshot (a size, a tree,
// a blob): always EIO, logged, whatever errno the cause carries (an ENOENT
// from a vanished pack is not the caller's missing file).
func (v *view) lowerErrno(op, path string, err error) syscall.Errno {
	return v.errno(op, path, &workspace.LowerError{Op: op, Path: path, Err: err})
}

// errnoOf is errno for system calls on the upper layer, whose failures
// are the caller's to see as they are.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, os.ErrNotExist) {
		return syscall.ENOENT
	}
	return syscall.EIO
}
