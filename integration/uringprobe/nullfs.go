//go:build linux

package main

import (
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// nullFS is a root directory with at most one file, "written", whose
// bytes are dropped: what a write costs through it is the transport's.
type nullFS struct {
	fuse.RawFileSystem // ENOSYS for the rest

	// mu guards exists and size; a leaf.
	mu     sync.Mutex
	exists bool
	size   uint64
}

func newNullFS() *nullFS { return &nullFS{RawFileSystem: fuse.NewDefaultRawFileSystem()} }

func (f *nullFS) fileAttr(a *fuse.Attr) {
	a.Ino = 2
	a.Mode = syscall.S_IFREG | 0644
	a.Size = f.size
	a.Nlink = 1
}

func (f *nullFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h.NodeId != 1 || name != "written" || !f.exists {
		return fuse.ENOENT
	}
	out.NodeId = 2
	f.fileAttr(&out.Attr)
	out.SetEntryTimeout(3600e9)
	out.SetAttrTimeout(3600e9)
	return fuse.OK
}

func (f *nullFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in.NodeId == 1 {
		out.Ino = 1
		out.Mode = syscall.S_IFDIR | 0777
		out.Nlink = 2
	} else {
		f.fileAttr(&out.Attr)
	}
	out.SetTimeout(3600e9)
	return fuse.OK
}

func (f *nullFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sz, ok := in.GetSize(); ok {
		f.size = sz
	}
	f.fileAttr(&out.Attr)
	return fuse.OK
}

func (f *nullFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists, f.size = true, 0
	out.NodeId = 2
	f.fileAttr(&out.Attr)
	out.SetEntryTimeout(3600e9)
	out.SetAttrTimeout(3600e9)
	out.Fh = 1
	return fuse.OK
}

func (f *nullFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	out.Fh = 1
	return fuse.OK
}

func (f *nullFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exists = false
	return fuse.OK
}

func (f *nullFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := in.Offset + uint64(len(data)); e > f.size {
		f.size = e
	}
	return uint32(len(data)), fuse.OK
}

func (f *nullFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	n := 0
	for _, d := range data {
		n += len(d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e := in.Offset + uint64(n); e > f.size {
		f.size = e
	}
	return uint32(n), fuse.OK
}

func (f *nullFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.OK }
func (f *nullFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn)         {}
func (f *nullFS) Forget(nodeid, nlookup uint64)                              {}
