//go:build linux

package fs

import (
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/internal/fuseuring"
)

// rawFS sits between the kernel and go-fuse's node layer and cuts the
// requests a warm read of a tree costs. Measured on a 20k-file workspace
// (BENCHMARKS.md), a warm `tar` sent an OPEN and a RELEASE per file and an
// OPENDIR and a RELEASEDIR per directory, ~42k round trips that made it 3x
// a native checkout; with them gone it sends none. What it does:
//
//   - No-open (unless FS opts.OpenHandles): the first OPEN is answered
//     ENOSYS, after which the kernel opens every file by itself, with
//     FOPEN_KEEP_CACHE and no RELEASE. Reads and writes then arrive with
//     no handle (Fh 0) and go-fuse hands them to the node (file.go's
//     inode I/O). CREATE and O_TMPFILE make no handle either: the kernel
//     that has learned no-open sends no RELEASE for one, so its descriptor
//     would stay open for good; the new file's node keeps it as its inode
//     writer, closed when the kernel forgets the node.
//   - No-opendir: the first OPENDIR is answered ENOSYS, after which the
//     kernel lists directories with no handle and caches the listing
//     (FOPEN_CACHE_DIR). go-fuse's node layer answers a READDIR without a
//     handle with an empty listing, so here a READDIR with Fh 0 opens a
//     directory stream below (kept while the kernel reads on from where
//     it stopped) and reads it. A directory whose node did not ask for a
//     cached listing (the mount's root, ref directories: their content
//     moves without the kernel being told) has its cached listing
//     dropped once read, so it is listed afresh every time, as before.
//   - FLUSH is answered ENOSYS: nothing is buffered in the daemon, and
//     the kernel then stops sending one per close. (go-fuse answers a
//     FLUSH without a handle OK itself, which would keep them coming.)
//   - Suid/sgid clearing (CAP_HANDLE_KILLPRIV_V2): the kernel stops asking
//     for security.capability before every write (one GETXATTR round trip
//     per write(2) otherwise) and leaves the clearing to the file system:
//     a WRITE or SETATTR flagged KILL_SUIDGID clears S_ISUID, and S_ISGID
//     of a group-executable file, as the kernel would have. (Capabilities
//     need nothing: the upper file's own file system drops
//     security.capability when the daemon writes it.)
type rawFS struct {
	fuse.RawFileSystem
	noOpen, noOpendir bool

	server notifier // set by Init (or mountRaw), before any request

	// mu guards dirs, the directory streams READDIRs without a handle read
	// from; a leaf, never held while calling the node layer.
	mu   sync.Mutex
	dirs map[uint64][]*dirCursor // by nodeid
	nDir int
}

// maxDirCursors bounds the directory streams kept open for READDIRs that
// will continue a listing; beyond it the oldest is released (a listing
// that goes on after that is opened again and sought to its offset).
const maxDirCursors = 256

// dirCursor is one directory stream below, opened for a READDIR without a
// handle, and where its listing stands.
type dirCursor struct {
	mu     sync.Mutex // held while a READDIR reads the stream
	fh     uint64
	next   uint64 // offset of the READDIR that would continue it
	cached bool   // the node asked for its listing to be cached
	done   bool   // released
}

func newRawFS(inner fuse.RawFileSystem, noOpen, noOpendir bool) *rawFS {
	return &rawFS{RawFileSystem: inner, noOpen: noOpen, noOpendir: noOpendir, dirs: map[uint64][]*dirCursor{}}
}

// notifier is the part of a server rawFS tells the kernel through.
type notifier interface {
	InodeNotify(node uint64, off int64, length int64) fuse.Status
}

// mountServer is what serves a mount: go-fuse's Server, or fuseuring's.
type mountServer interface {
	Unmount() error
	Wait()
}

func (r *rawFS) Init(s *fuse.Server) {
	r.server = s
	r.RawFileSystem.Init(s)
}

func (r *rawFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.noOpen {
		return fuse.ENOSYS
	}
	return r.RawFileSystem.Open(cancel, in, out)
}

func (r *rawFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if r.noOpendir {
		return fuse.ENOSYS
	}
	return r.RawFileSystem.OpenDir(cancel, in, out)
}

func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status { return fuse.ENOSYS }

func (r *rawFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return r.RawFileSystem.ReadDir(cancel, in, out)
	}
	return r.readDir(cancel, in, out, false)
}

func (r *rawFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if in.Fh != 0 {
		return r.RawFileSystem.ReadDirPlus(cancel, in, out)
	}
	return r.readDir(cancel, in, out, true)
}

// readDir answers a READDIR(PLUS) that came without a handle from a
// directory stream of its own: the one a previous READDIR left at this
// offset, else a new one sought there.
func (r *rawFS) readDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	c := r.takeCursor(in.NodeId, in.Offset)
	if c == nil {
		var oo fuse.OpenOut
		st := r.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader, Flags: syscall.O_RDONLY}, &oo)
		if !st.Ok() {
			return st
		}
		c = &dirCursor{fh: oo.Fh, cached: oo.OpenFlags&fuse.FOPEN_CACHE_DIR != 0}
		c.mu.Lock()
	}
	rin := *in
	rin.Fh = c.fh
	var st fuse.Status
	if plus {
		st = r.RawFileSystem.ReadDirPlus(cancel, &rin, out)
	} else {
		st = r.RawFileSystem.ReadDir(cancel, &rin, out)
	}
	end := !st.Ok() || out.Offset == in.Offset // nothing added: the end
	c.next = out.Offset
	c.mu.Unlock()
	if end {
		r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: c.fh})
		if st.Ok() && !c.cached {
			r.uncache(in.NodeId)
		}
		return st
	}
	r.putCursor(in.NodeId, c)
	return st
}

// uncache makes the kernel list directory nodeid afresh next time: its
// content changes without the kernel being told (the mount's root, ref
// directories). It runs while answering the last (empty) READDIR of a
// listing, before the reply: the notification drops the pages of the
// listing cached so far and the directory's attributes; the reply then
// marks the (now empty) cache complete, and the next listing, finding
// the attributes invalid, asks for them and gets a new mtime (those
// directories report the time of the request, browse.go), which makes
// the kernel drop the cache and list again. Sent after the reply it
// could come too late (a goroutine may run after the next `ls`). Inside
// the request is safe for this notification: invalidating an inode takes
// no lock the READDIR in progress holds (unlike an entry's, which needs
// the directory's inode lock).
func (r *rawFS) uncache(nodeid uint64) {
	r.server.InodeNotify(nodeid, 0, 0)
}

// takeCursor removes and returns, locked, the stream of nodeid whose
// listing stands at off, or nil.
func (r *rawFS) takeCursor(nodeid, off uint64) *dirCursor {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.dirs[nodeid]
	for i, c := range cs {
		if c.next == off {
			r.dirs[nodeid] = append(cs[:i:i], cs[i+1:]...)
			if len(r.dirs[nodeid]) == 0 {
				delete(r.dirs, nodeid)
			}
			r.nDir--
			c.mu.Lock()
			return c
		}
	}
	return nil
}

// putCursor keeps c for the READDIR that continues it, releasing the
// oldest stream if there are too many.
func (r *rawFS) putCursor(nodeid uint64, c *dirCursor) {
	var evict *dirCursor
	var evictNode uint64
	r.mu.Lock()
	r.dirs[nodeid] = append(r.dirs[nodeid], c)
	r.nDir++
	if r.nDir > maxDirCursors {
		for id, cs := range r.dirs { // any one: the map's order is as good as any
			evict, evictNode = cs[0], id
			r.dirs[id] = cs[1:]
			if len(r.dirs[id]) == 0 {
				delete(r.dirs, id)
			}
			r.nDir--
			break
		}
	}
	r.mu.Unlock()
	if evict != nil {
		r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: evictNode}, Fh: evict.fh})
	}
}

// Forget releases the streams of a directory the kernel forgot (before
// go-fuse may reuse its nodeid).
func (r *rawFS) Forget(nodeid, nlookup uint64) {
	r.mu.Lock()
	cs := r.dirs[nodeid]
	delete(r.dirs, nodeid)
	r.nDir -= len(cs)
	r.mu.Unlock()
	for _, c := range cs {
		r.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: fuse.InHeader{NodeId: nodeid}, Fh: c.fh})
	}
	r.RawFileSystem.Forget(nodeid, nlookup)
}

func (r *rawFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0 {
		if st := r.killSuidgid(cancel, &in.InHeader); !st.Ok() {
			return 0, st
		}
	}
	return r.RawFileSystem.Write(cancel, in, data)
}

func (r *rawFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0 {
		if st := r.killSuidgid(cancel, &in.InHeader); !st.Ok() {
			return 0, st
		}
	}
	return r.RawFileSystem.Writev(cancel, in, data)
}

func (r *rawFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 {
		sin := *in
		sin.Valid &^= fuse.FATTR_KILL_SUIDGID
		if sin.Valid&fuse.FATTR_MODE == 0 {
			var a fuse.AttrOut
			if st := r.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &a); !st.Ok() {
				return st
			}
			if m, kill := killedMode(a.Mode); kill {
				sin.Valid |= fuse.FATTR_MODE
				sin.Mode = m
			}
		}
		in = &sin
	}
	return r.RawFileSystem.SetAttr(cancel, in, out)
}

// killSuidgid clears the suid and sgid bits of the node a write by an
// unprivileged caller is about to change, before the write, as the kernel
// does. Only a file that has one costs more than a GETATTR in the daemon.
func (r *rawFS) killSuidgid(cancel <-chan struct{}, h *fuse.InHeader) fuse.Status {
	var a fuse.AttrOut
	if st := r.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: *h}, &a); !st.Ok() {
		return st
	}
	m, kill := killedMode(a.Mode)
	if !kill {
		return fuse.OK
	}
	in := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{InHeader: *h, Valid: fuse.FATTR_MODE, Mode: m}}
	var out fuse.AttrOut
	return r.RawFileSystem.SetAttr(cancel, in, &out)
}

// killedMode is mode without what a write by an unprivileged user clears:
// S_ISUID, and S_ISGID where group execution makes it mean setgid (without
// it, it means mandatory locking, which a write keeps).
func killedMode(mode uint32) (uint32, bool) {
	kill := uint32(syscall.S_ISUID)
	if mode&syscall.S_IXGRP != 0 {
		kill |= syscall.S_ISGID
	}
	if mode&kill == 0 {
		return mode & 0o7777, false
	}
	return mode & 0o7777 &^ kill, true
}

// mountRaw mounts root at dir with go-fuse's node layer below rawFS (and,
// if obs is set, every request observed above it), served by go-fuse's
// Server through /dev/fuse, or with ioURing by a fuseuring Server, which
// the node layer and rawFS then tell the kernel through (it calls no
// Init).
func mountRaw(dir string, root gofs.InodeEmbedder, opts *gofs.Options, obs Observer, noOpen, ioURing bool) (mountServer, error) {
	var ring *fuseuring.Server
	if ioURing {
		ring = fuseuring.New(opts.MountOptions, fuseuring.Options{})
		opts.ServerCallbacks = ring
	}
	rfs := newRawFS(gofs.NewNodeFS(root, opts), noOpen, noOpen)
	var raw fuse.RawFileSystem = rfs
	if obs != nil {
		raw = &observedFS{RawFileSystem: raw, obs: obs}
	}
	if ring != nil {
		rfs.server = ring
		if err := ring.Mount(dir, raw); err != nil {
			return nil, err
		}
		return ring, nil
	}
	server, err := fuse.NewServer(raw, dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return nil, err
	}
	return server, nil
}

// openCapabilities are the open-related capabilities asked of the kernel.
// In no-open mode, O_TRUNC must reach the daemon as a SETATTR: with
// CAP_ATOMIC_O_TRUNC the kernel would leave it to the OPEN it no longer
// sends, and the file would silently keep its content.
func (f *FS) openCapabilities() uint64 {
	if f.opts.OpenHandles {
		// O_TRUNC arrives with OPEN, so `> file` on an unchanged file
		// copies up nothing instead of the whole file.
		return fuse.CAP_ATOMIC_O_TRUNC
	}
	return fuse.CAP_NO_OPEN_SUPPORT | fuse.CAP_NO_OPENDIR_SUPPORT
}
