//go:build linux

package fs

import (
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Observer is told of every FUSE request the daemon answers: its
// operation ("lookup", "read", ...), how long the handler took and the
// errno it answered (0 for success). It must be cheap and safe for
// concurrent use: it runs on the request's goroutine.
type Observer func(op string, took time.Duration, errno syscall.Errno)

// observedFS times every request of the raw file system it wraps.
// go-fuse's own Server.RecordLatencies is a no-op since v2.x, so the
// timing is done here, between the kernel's request and the node's
// answer. Forget, Release and ReleaseDir have no answer and are not
// timed; an op the wrapped file system does not implement (ENOSYS, which
// go-fuse then retries another way, as Writev with Write) is not counted.
// mountRaw (raw.go) puts it outermost, so that the time counted is the
// whole answer.
type observedFS struct {
	fuse.RawFileSystem
	obs Observer
}

func (o *observedFS) done(op string, start time.Time, st fuse.Status) {
	if st == fuse.ENOSYS {
		return
	}
	o.obs(op, time.Since(start), syscall.Errno(st))
}

func (o *observedFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Lookup(cancel, header, name, out)
	o.done("lookup", start, st)
	return st
}

func (o *observedFS) GetAttr(cancel <-chan struct{}, input *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.GetAttr(cancel, input, out)
	o.done("getattr", start, st)
	return st
}

func (o *observedFS) SetAttr(cancel <-chan struct{}, input *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetAttr(cancel, input, out)
	o.done("setattr", start, st)
	return st
}

func (o *observedFS) Mknod(cancel <-chan struct{}, input *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Mknod(cancel, input, name, out)
	o.done("mknod", start, st)
	return st
}

func (o *observedFS) Mkdir(cancel <-chan struct{}, input *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Mkdir(cancel, input, name, out)
	o.done("mkdir", start, st)
	return st
}

func (o *observedFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Unlink(cancel, header, name)
	o.done("unlink", start, st)
	return st
}

func (o *observedFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rmdir(cancel, header, name)
	o.done("rmdir", start, st)
	return st
}

func (o *observedFS) Rename(cancel <-chan struct{}, input *fuse.RenameIn, oldName string, newName string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Rename(cancel, input, oldName, newName)
	o.done("rename", start, st)
	return st
}

func (o *observedFS) Link(cancel <-chan struct{}, input *fuse.LinkIn, filename string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Link(cancel, input, filename, out)
	o.done("link", start, st)
	return st
}

func (o *observedFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, pointedTo string, linkName string, out *fuse.EntryOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Symlink(cancel, header, pointedTo, linkName, out)
	o.done("symlink", start, st)
	return st
}

func (o *observedFS) Access(cancel <-chan struct{}, input *fuse.AccessIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Access(cancel, input)
	o.done("access", start, st)
	return st
}

func (o *observedFS) SetXAttr(cancel <-chan struct{}, input *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetXAttr(cancel, input, attr, data)
	o.done("setxattr", start, st)
	return st
}

func (o *observedFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.RemoveXAttr(cancel, header, attr)
	o.done("removexattr", start, st)
	return st
}

func (o *observedFS) Create(cancel <-chan struct{}, input *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Create(cancel, input, name, out)
	o.done("create", start, st)
	return st
}

func (o *observedFS) Tmpfile(cancel <-chan struct{}, input *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Tmpfile(cancel, input, out)
	o.done("tmpfile", start, st)
	return st
}

func (o *observedFS) Open(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Open(cancel, input, out)
	o.done("open", start, st)
	return st
}

func (o *observedFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Lseek(cancel, in, out)
	o.done("lseek", start, st)
	return st
}

func (o *observedFS) GetLk(cancel <-chan struct{}, input *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.GetLk(cancel, input, out)
	o.done("getlk", start, st)
	return st
}

func (o *observedFS) SetLk(cancel <-chan struct{}, input *fuse.LkIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetLk(cancel, input)
	o.done("setlk", start, st)
	return st
}

func (o *observedFS) SetLkw(cancel <-chan struct{}, input *fuse.LkIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.SetLkw(cancel, input)
	o.done("setlkw", start, st)
	return st
}

func (o *observedFS) Ioctl(cancel <-chan struct{}, input *fuse.IoctlIn, inbuf []byte, output *fuse.IoctlOut, outbuf []byte) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Ioctl(cancel, input, inbuf, output, outbuf)
	o.done("ioctl", start, st)
	return st
}

func (o *observedFS) Flush(cancel <-chan struct{}, input *fuse.FlushIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Flush(cancel, input)
	o.done("flush", start, st)
	return st
}

func (o *observedFS) Fsync(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Fsync(cancel, input)
	o.done("fsync", start, st)
	return st
}

func (o *observedFS) Fallocate(cancel <-chan struct{}, input *fuse.FallocateIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Fallocate(cancel, input)
	o.done("fallocate", start, st)
	return st
}

func (o *observedFS) OpenDir(cancel <-chan struct{}, input *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.OpenDir(cancel, input, out)
	o.done("opendir", start, st)
	return st
}

func (o *observedFS) ReadDir(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDir(cancel, input, out)
	o.done("readdir", start, st)
	return st
}

func (o *observedFS) ReadDirPlus(cancel <-chan struct{}, input *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.ReadDirPlus(cancel, input, out)
	o.done("readdirplus", start, st)
	return st
}

func (o *observedFS) FsyncDir(cancel <-chan struct{}, input *fuse.FsyncIn) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.FsyncDir(cancel, input)
	o.done("fsyncdir", start, st)
	return st
}

func (o *observedFS) StatFs(cancel <-chan struct{}, input *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.StatFs(cancel, input, out)
	o.done("statfs", start, st)
	return st
}

func (o *observedFS) Statx(cancel <-chan struct{}, input *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	start := time.Now()
	st := o.RawFileSystem.Statx(cancel, input, out)
	o.done("statx", start, st)
	return st
}

func (o *observedFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	start := time.Now()
	b, st := o.RawFileSystem.Readlink(cancel, header)
	o.done("readlink", start, st)
	return b, st
}

func (o *observedFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.GetXAttr(cancel, header, attr, dest)
	o.done("getxattr", start, st)
	return n, st
}

func (o *observedFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.ListXAttr(cancel, header, dest)
	o.done("listxattr", start, st)
	return n, st
}

func (o *observedFS) Read(cancel <-chan struct{}, input *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	start := time.Now()
	r, st := o.RawFileSystem.Read(cancel, input, buf)
	o.done("read", start, st)
	return r, st
}

func (o *observedFS) Write(cancel <-chan struct{}, input *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Write(cancel, input, data)
	o.done("write", start, st)
	return n, st
}

func (o *observedFS) Writev(cancel <-chan struct{}, input *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.Writev(cancel, input, data)
	o.done("write", start, st)
	return n, st
}

func (o *observedFS) CopyFileRange(cancel <-chan struct{}, input *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	start := time.Now()
	n, st := o.RawFileSystem.CopyFileRange(cancel, input)
	o.done("copy_file_range", start, st)
	return n, st
}
