//go:build linux

package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/gitfs/gitfs/workspace"
)

// Extended attributes: only upper entries have them. The layer's own
// records (PREFIX*) are invisible and cannot be set.

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
	if workspace.Reserved(attr) {
		return 0, syscall.ENODATA
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return 0, e
	}
	if !n.state().upper || v.upperFd() < 0 {
		return 0, syscall.ENODATA
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return 0, e
	}
	defer done()
	k, err := workspace.GetXattr(dfd, name, attr, dest)
	if err != nil {
		return uint32(k), errnoOf(err)
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
	if !n.state().upper || v.upperFd() < 0 {
		return 0, 0
	}
	dfd, name, done, e := n.xattrTarget()
	if e != 0 {
		return 0, e
	}
	defer done()
	buf := make([]byte, 64<<10)
	k, err := workspace.ListXattr(dfd, name, buf)
	if err != nil {
		return 0, errnoOf(err)
	}
	var outb []byte
	for _, a := range strings.Split(string(buf[:k]), "\x00") {
		if a == "" || workspace.Reserved(a) {
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
	if workspace.Reserved(attr) {
		return syscall.EPERM
	}
	unlock, e := n.lockChange()
	if e != 0 {
		return e
	}
	defer unlock()
	if e := n.refusePinned(); e != 0 {
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
	return errnoOf(workspace.SetXattr(dfd, name, attr, data, int(flags)))
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if workspace.Reserved(attr) {
		return syscall.ENODATA
	}
	unlock, e := n.lockChange()
	if e != 0 {
		return e
	}
	defer unlock()
	if e := n.refusePinned(); e != 0 {
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
	return errnoOf(workspace.RemoveXattr(dfd, name, attr))
}
