//go:build linux

package fuseuring

import (
	"math"
	"syscall"
	"unsafe"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The kernel takes notifications on /dev/fuse only: a fuse_out_header
// whose error field is the notification's code and whose unique is 0,
// then the notification's struct and its payload, in one write.

var _ gofs.ServerCallbacks = (*Server)(nil)

func (s *Server) notify(code fuse.Status, out unsafe.Pointer, outSize uintptr, payload []byte) fuse.Status {
	if s.devFd < 0 {
		return fuse.ENOSYS
	}
	var h fuse.OutHeader
	h.Length = uint32(unsafe.Sizeof(h) + outSize + uintptr(len(payload)))
	h.Status = -int32(code) // go-fuse keeps the codes negated, as errors
	iov := [][]byte{
		unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h)),
		unsafe.Slice((*byte)(out), outSize),
	}
	if len(payload) > 0 {
		iov = append(iov, payload)
	}
	_, err := unix.Writev(s.devFd, iov)
	if err != nil {
		return fuse.ToStatus(err)
	}
	return fuse.OK
}

// nulTerminated is name followed by a NUL, as the kernel wants it.
func nulTerminated(name string) []byte {
	b := make([]byte, len(name)+1)
	copy(b, name)
	return b
}

// InodeNotify drops the kernel's cached data of node in [off, off+length)
// and its attributes (a negative off: the attributes only).
func (s *Server) InodeNotify(node uint64, off int64, length int64) fuse.Status {
	out := fuse.NotifyInvalInodeOut{Ino: node, Off: off, Length: length}
	return s.notify(fuse.NOTIFY_INVAL_INODE, unsafe.Pointer(&out), unsafe.Sizeof(out), nil)
}

// EntryNotify drops the kernel's entry name in directory parent.
func (s *Server) EntryNotify(parent uint64, name string) fuse.Status {
	out := fuse.NotifyInvalEntryOut{Parent: parent, NameLen: uint32(len(name))}
	return s.notify(fuse.NOTIFY_INVAL_ENTRY, unsafe.Pointer(&out), unsafe.Sizeof(out), nulTerminated(name))
}

// DeleteNotify tells the kernel that name in parent, which was child, is
// gone.
func (s *Server) DeleteNotify(parent uint64, child uint64, name string) fuse.Status {
	out := fuse.NotifyInvalDeleteOut{Parent: parent, Child: child, NameLen: uint32(len(name))}
	return s.notify(fuse.NOTIFY_DELETE, unsafe.Pointer(&out), unsafe.Sizeof(out), nulTerminated(name))
}

// InodeNotifyStoreCache puts data into node's page cache at offset.
func (s *Server) InodeNotifyStoreCache(node uint64, offset int64, data []byte) fuse.Status {
	for len(data) > 0 {
		n := min(len(data), math.MaxInt32)
		out := fuse.NotifyStoreOut{Nodeid: node, Offset: uint64(offset), Size: uint32(n)}
		if st := s.notify(fuse.NOTIFY_STORE_CACHE, unsafe.Pointer(&out), unsafe.Sizeof(out), data[:n]); st != fuse.OK {
			return st
		}
		data, offset = data[n:], offset+int64(n)
	}
	return fuse.OK
}

// InodeRetrieveCache is not offered: the answer would come as a request
// of its own, which nothing here waits for.
func (s *Server) InodeRetrieveCache(node uint64, offset int64, dest []byte) (int, fuse.Status) {
	return 0, fuse.Status(syscall.ENOSYS)
}
