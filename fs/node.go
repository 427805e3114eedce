//go:build linux

package fs

import (
	"context"
	"sort"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// node is a file, directory, symlink or special file of a view. This file
// holds what reads the namespace (lookup, readdir, getattr, readlink,
// statfs); changes are in create.go, remove.go, setattr.go and xattr.go,
// open handles in file.go.
type node struct {
	gofs.Inode
	v *view

	// mu guards the fields below but isRoot and io. Hold at most one
	// node.mu at a time. The fields are ordered to pack: a node is the
	// daemon's memory (one per inode the kernel knows), and at 288 bytes
	// it takes a size class 64 bytes smaller than it did at 328 (352).
	mu           sync.Mutex
	isRoot       bool           // set before the node is shared
	upper        bool           // an upper entry exists (for dirs: merged or opaque upper dir)
	opaque       bool           // upper dir hides the lower layer
	hasLowerPath bool           // lowerPath names this node's lower entry
	hasLower     bool           // lower shows through (set from lowerPath at epoch)
	lowerPath    string         // path in the lower snapshot
	lower        snapshot.Entry // valid if hasLower
	epoch        uint64         // v.epoch when lower was resolved

	// prefetched is v.epoch+1 once this directory's files were queued for
	// inflation (on the first open of one of them).
	prefetched uint64

	dirfd int32 // cached descriptor of the upper dir, -1 if none

	// anonFd holds an O_TMPFILE file, which has no name to be found by, so
	// that it can be linked into place; -1 otherwise.
	anonFd int32

	// cachedOpens counts open handles served through the page cache (not
	// passthrough). The kernel refuses (EIO) to mix cached and passthrough
	// opens of one inode, so while any is open new opens are cached too.
	cachedOpens int32

	// io is what reads and writes without a handle (no-open mode) go
	// through, kept until the kernel forgets the inode (file.go).
	io inodeIO
}

var (
	_ gofs.NodeLookuper      = (*node)(nil)
	_ gofs.NodeReaddirer     = (*node)(nil)
	_ gofs.NodeGetattrer     = (*node)(nil)
	_ gofs.NodeSetattrer     = (*node)(nil)
	_ gofs.NodeOpener        = (*node)(nil)
	_ gofs.NodeCreater       = (*node)(nil)
	_ gofs.NodeMkdirer       = (*node)(nil)
	_ gofs.NodeMknoder       = (*node)(nil)
	_ gofs.NodeSymlinker     = (*node)(nil)
	_ gofs.NodeLinker        = (*node)(nil)
	_ gofs.NodeUnlinker      = (*node)(nil)
	_ gofs.NodeRmdirer       = (*node)(nil)
	_ gofs.NodeRenamer       = (*node)(nil)
	_ gofs.NodeReadlinker    = (*node)(nil)
	_ gofs.NodeStatfser      = (*node)(nil)
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
	_ gofs.NodeFsyncer       = (*node)(nil)
	_ gofs.NodeOnForgetter   = (*node)(nil)
)

// childInfo is what a lookup found for one name.
type childInfo struct {
	mode         uint32 // S_IFMT bits
	ino          uint64
	upper        bool
	opaque       bool
	hasLowerPath bool
	lowerPath    string
	hasLower     bool
	lower        snapshot.Entry
	shared       bool        // a browse path's file that is one inode wherever it shows (shared.go)
	st           unix.Stat_t // if upper
}

func (n *node) setState(ci *childInfo, epoch uint64) {
	n.mu.Lock()
	n.upper, n.opaque = ci.upper, ci.opaque
	n.hasLowerPath, n.lowerPath = ci.hasLowerPath, ci.lowerPath
	n.hasLower, n.lower = ci.hasLower, ci.lower
	n.epoch = epoch
	n.mu.Unlock()
}

type nodeState struct {
	upper, opaque, hasLower, hasLowerPath bool
	lowerPath                             string
	lower                                 snapshot.Entry
}

// state returns the node's fields, re-resolving its lower entry if the
// view switched commit since. Caller holds v.mu.
func (n *node) state() nodeState { return n.stateIn("", nil) }

// stateIn is state for a caller that holds the entries (in) of the tree
// at lower path dir in the view's snapshot: a node of that directory is
// then re-resolved by a search of in, not by a lookup of its whole path
// (ws update walks every directory it changed: pinChangedInodes).
// Caller holds v.mu.
func (n *node) stateIn(dir string, in []snapshot.Entry) nodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hasLowerPath && n.epoch != n.v.epoch {
		var e snapshot.Entry
		var err error
		if d, name := splitPath(n.lowerPath); in != nil && d == dir && name != "" {
			var ok bool
			if e, ok = snapshot.Find(in, name); !ok {
				err = snapshot.ErrNotExist
			}
		} else {
			e, err = n.v.snap.Lookup(n.lowerPath)
		}
		switch {
		case err != nil && n.hasLower && !n.upper && kindClass(n.lower.Kind) != "d":
			// The path is gone from the new commit; this inode stays the
			// old file, as one unlinked while open stays readable: a
			// handle opened before the update reads its bytes (they are
			// pinned: pinChangedInodes) and fstat gives its size (it gave
			// 0, and the kernel then read nothing).
		case err != nil:
			n.hasLower = false
		case n.hasLower && kindClass(e.Kind) != kindClass(n.lower.Kind):
			n.hasLower = false
		case !n.hasLower && n.upper && kindMode(e.Kind) != syscall.S_IFDIR:
			n.hasLower = false
		case n.hasLower && !n.upper && kindClass(e.Kind) != "d" && e.ID != n.lower.ID:
			// The path now holds other content, which lookups give a new
			// inode (see lowerIno); this inode stays the old file, so a
			// handle opened before the update sees old bytes and size.
		default:
			n.hasLower, n.lower = true, e
		}
		n.epoch = n.v.epoch
	}
	return nodeState{upper: n.upper, opaque: n.opaque, hasLower: n.hasLower, hasLowerPath: n.hasLowerPath,
		lowerPath: n.lowerPath, lower: n.lower}
}

// parent returns the node's directory and its name there, or nil for the
// view's root and for a node in no directory.
func (n *node) parent() (*node, string) {
	if n.isRoot {
		return nil, ""
	}
	name, p := n.Parent()
	if p == nil {
		return nil, ""
	}
	pn, ok := p.Operations().(*node)
	if !ok || pn.v != n.v {
		return nil, ""
	}
	return pn, name
}

func noop() {}

// dirFd returns a descriptor of the node's upper directory, which must
// exist, and a function to call when done with it. Caller holds v.mu.
func (n *node) dirFd() (int, func(), syscall.Errno) {
	if n.isRoot {
		if fd := n.v.upperFd(); fd >= 0 {
			return fd, noop, 0
		}
		return -1, noop, syscall.EROFS
	}
	n.mu.Lock()
	if n.dirfd >= 0 {
		fd := int(n.dirfd)
		n.mu.Unlock()
		return fd, noop, 0
	}
	n.mu.Unlock()
	p, name := n.parent()
	if p == nil {
		return -1, noop, syscall.ENOENT
	}
	pfd, pdone, e := p.dirFd()
	if e != 0 {
		return -1, noop, e
	}
	fd, err := workspace.OpenDir(pfd, name)
	pdone()
	if err != nil {
		return -1, noop, errnoOf(err)
	}
	if n.v.fs.fdBudget.Add(-1) < 0 {
		n.v.fs.fdBudget.Add(1)
		return fd, func() { unix.Close(fd) }, 0
	}
	n.mu.Lock()
	if n.dirfd >= 0 { // another lookup cached one meanwhile
		n.mu.Unlock()
		n.v.fs.fdBudget.Add(1)
		return fd, func() { unix.Close(fd) }, 0
	}
	n.dirfd = int32(fd)
	n.mu.Unlock()
	return fd, noop, 0
}

func (n *node) dropDirFd() {
	n.mu.Lock()
	fd := int(n.dirfd)
	n.dirfd = -1
	n.mu.Unlock()
	if fd >= 0 {
		unix.Close(fd)
		n.v.fs.fdBudget.Add(1)
	}
}

// prefetchSiblings queues the blobs of the other files in n's directory the
// first time one of them is opened for reading: a tree walk that reads
// content (tar, grep, a build) then finds them inflated by the background
// workers, while walks that only list (find, ls) inflate nothing. Caller
// holds v.mu.
func (n *node) prefetchSiblings() {
	p, _ := n.parent()
	if p == nil {
		return
	}
	v := n.v
	p.mu.Lock()
	first := p.prefetched != v.epoch+1
	p.prefetched = v.epoch + 1
	p.mu.Unlock()
	if !first {
		return
	}
	entries, _ := p.lowerEntries(p.state())
	for _, e := range entries {
		if e.Kind == snapshot.File || e.Kind == snapshot.Executable {
			v.fs.prefetch(v, e.ID)
		}
	}
}

func (n *node) OnForget() {
	n.dropDirFd()
	n.dropIO()
	if n.isRoot {
		// The kernel knows nothing of the view any more (a node is
		// forgotten after its children).
		if r := n.v.keptSnap.Swap(nil); r != nil {
			(*r)()
		}
	}
	n.mu.Lock()
	if n.anonFd >= 0 {
		unix.Close(int(n.anonFd))
		n.anonFd = -1
	}
	n.mu.Unlock()
}

// loc returns the directory descriptor and name of the node's upper entry.
func (n *node) loc() (int, string, func(), syscall.Errno) {
	p, name := n.parent()
	if p == nil {
		return -1, "", noop, syscall.ENOENT
	}
	pfd, done, e := p.dirFd()
	return pfd, name, done, e
}

// lowerEntries lists the lower directory showing through n (nil if none).
func (n *node) lowerEntries(st nodeState) ([]snapshot.Entry, syscall.Errno) {
	if !st.hasLower || st.opaque || st.lower.Kind != snapshot.Dir {
		return nil, 0
	}
	entries, err := n.v.snap.Tree(st.lower.ID)
	if err != nil {
		return nil, n.v.lowerErrno("tree", st.lowerPath, err)
	}
	return entries, 0
}

func (n *node) lowerHas(st nodeState, name string) bool {
	entries, _ := n.lowerEntries(st)
	_, ok := snapshot.Find(entries, name)
	return ok
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// lookupChild resolves name in directory n. Caller holds v.mu.
func (n *node) lookupChild(name string) (childInfo, syscall.Errno) {
	var ci childInfo
	st := n.state()
	v := n.v
	if st.upper {
		pfd, done, e := n.dirFd()
		if e != 0 {
			return ci, e
		}
		ust, err := workspace.Lstat(pfd, name)
		if err == nil {
			defer done()
			if workspace.IsWhiteout(&ust) {
				return ci, syscall.ENOENT
			}
			ci.upper, ci.st = true, ust
			ci.mode = ust.Mode & syscall.S_IFMT
			ci.ino = v.upperIno(pfd, name, &ust)
			if ci.mode == syscall.S_IFDIR {
				if v.layer.Opaque(pfd, name) {
					ci.opaque = true
					return ci, 0
				}
				lp, redirected := v.layer.Redirect(pfd, name)
				if !redirected {
					entries, _ := n.lowerEntries(st)
					e, ok := snapshot.Find(entries, name)
					if !ok || kindMode(e.Kind) != syscall.S_IFDIR {
						return ci, 0
					}
					lp = joinPath(st.lowerPath, name)
				}
				ci.hasLowerPath, ci.lowerPath = true, lp
				if e, err := v.snap.Lookup(lp); err == nil && kindMode(e.Kind) == syscall.S_IFDIR {
					ci.hasLower, ci.lower = true, e
				}
			}
			return ci, 0
		}
		done()
		if err != unix.ENOENT {
			return ci, errnoOf(err)
		}
	}
	entries, e := n.lowerEntries(st)
	if e != 0 {
		return ci, e
	}
	le, ok := snapshot.Find(entries, name)
	if !ok {
		return ci, syscall.ENOENT
	}
	ci.hasLowerPath, ci.lowerPath = true, joinPath(st.lowerPath, name)
	ci.hasLower, ci.lower = true, le
	ci.mode = kindMode(le.Kind)
	if v.sharesFile(ci.lowerPath, le) {
		ci.shared, ci.ino = true, sharedIno(v.browse.repo, le)
	} else {
		ci.ino = v.lowerIno(ci.lowerPath, le)
	}
	return ci, 0
}

func (n *node) childAttr(ci *childInfo, out *fuse.Attr) syscall.Errno {
	if ci.upper {
		statToAttr(&ci.st, out)
		return 0
	}
	if e := n.v.lowerAttr(ci.lower, ci.lowerPath, out); e != 0 {
		return e
	}
	if ci.shared {
		setTimes(out, blobTime(ci.lower.ID)) // as its Getattr says (shared.go)
	}
	return 0
}

// childNode returns the live node for name if go-fuse has one with ci's
// identity (updating its state), else a new one, whose attributes are
// attr.
func (n *node) childNode(ctx context.Context, name string, ci *childInfo, attr *fuse.Attr) *gofs.Inode {
	if ci.shared {
		if old := n.GetChild(name); old != nil && old.StableAttr().Ino == ci.ino {
			return old
		}
		// go-fuse registers it unless another browse path's lookup
		// registered a node of the same identity: then that one is
		// the kernel's, and this one is dropped unused.
		return n.NewInode(ctx, n.v.newSharedFile(ci, attr), gofs.StableAttr{Mode: syscall.S_IFREG, Ino: ci.ino})
	}
	if old := n.GetChild(name); old != nil && old.StableAttr().Ino == ci.ino {
		if cn, ok := old.Operations().(*node); ok && cn.v == n.v {
			cn.setState(ci, n.v.epoch)
			return old
		}
	}
	cn := &node{v: n.v, dirfd: -1, anonFd: -1}
	cn.setState(ci, n.v.epoch)
	return n.NewInode(ctx, cn, gofs.StableAttr{Mode: ci.mode, Ino: ci.ino})
}

func (n *node) live() syscall.Errno {
	if n.v.removed {
		return syscall.ENOENT
	}
	return 0
}

// liveOrLower is live for a read of n (in state st): a removed
// workspace's file that shows the snapshot's bytes (st) may still be read
// by a process that opened it, which the kernel in no-open mode reaches by
// inode only; its upper files are held by descriptor (holdUpperFiles).
func (n *node) liveOrLower(st *nodeState) syscall.Errno {
	if e := n.live(); e != 0 && (st.upper || !st.hasLower || kindIsDir(n)) {
		return e
	}
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	n.v.fs.stats.lookups.Add(1)
	if n.isRoot && name == workspace.GitDirName {
		if e := n.v.awaitGitDir(ctx); e != 0 {
			return nil, e
		}
		if e := n.v.repairGitDir(ctx); e != 0 {
			return nil, e
		}
	}
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return nil, e
	}
	ci, e := n.lookupChild(name)
	if e != 0 {
		return nil, e
	}
	if e := n.childAttr(&ci, &out.Attr); e != 0 {
		return nil, e
	}
	if e := n.childDirNlink(name, &ci, &out.Attr); e != 0 { // attr.go
		return nil, e
	}
	return n.childNode(ctx, name, &ci, &out.Attr), 0
}

// OpendirHandle lists the directory once per open and lets the kernel keep
// the listing (FOPEN_CACHE_DIR): a second `ls` or tar of an unchanged tree
// costs no request. Changes through the mount invalidate it in the kernel;
// ws update invalidates the directories it changes.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ds, e := n.Readdir(ctx)
	if e != 0 {
		return nil, 0, e
	}
	l := &listing{ds: ds, lookup: n.Lookup, released: n.listed}
	if n.isRoot && n.v.gitDirRunning() {
		l.lookup = n.lookupNoWait // listing the root must not wait for the git dir (git.go)
	}
	return l, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	v := n.v
	v.mu.RLock()
	defer v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return nil, e
	}
	st := n.state()
	var list, uppers []fuse.DirEntry
	parentIno := uint64(1)
	if _, p := n.Parent(); p != nil {
		parentIno = p.StableAttr().Ino
	}
	list = append(list, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: n.StableAttr().Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno})
	hidden := map[string]bool{}
	if st.upper {
		dfd, done, e := n.dirFd()
		if e != 0 {
			return nil, e
		}
		names, err := workspace.ReadDirNames(dfd)
		if err != nil {
			done()
			return nil, errnoOf(err)
		}
		sort.Strings(names)
		for _, name := range names {
			ust, err := workspace.Lstat(dfd, name)
			if err != nil {
				continue
			}
			hidden[name] = true
			if workspace.IsWhiteout(&ust) {
				continue
			}
			uppers = append(uppers, fuse.DirEntry{Name: name, Mode: ust.Mode & syscall.S_IFMT, Ino: v.upperIno(dfd, name, &ust)})
		}
		done()
	}
	entries, e := n.lowerEntries(st)
	if e != 0 {
		return nil, e
	}
	for _, le := range entries {
		if hidden[le.Name] {
			continue
		}
		list = append(list, fuse.DirEntry{Name: le.Name, Mode: kindMode(le.Kind), Ino: v.lowerIno(joinPath(st.lowerPath, le.Name), le)})
	}
	list = append(list, uppers...)
	return gofs.NewListDirStream(list), 0
}

// getattr fills out for n. Caller holds v.mu.
func (n *node) getattr(out *fuse.Attr) syscall.Errno {
	st := n.state()
	if st.upper {
		var ust unix.Stat_t
		if kindIsDir(n) {
			fd, done, e := n.dirFd()
			if e != 0 {
				return e
			}
			err := unix.Fstat(fd, &ust)
			if err != nil {
				done()
				return errnoOf(err)
			}
			statToAttr(&ust, out)
			out.Nlink, e = n.upperDirNlink(fd, &ust, st) // attr.go
			done()
			return e
		} else {
			pfd, name, done, e := n.loc()
			if e != 0 {
				return e
			}
			var err error
			ust, err = workspace.Lstat(pfd, name)
			done()
			if err != nil {
				return errnoOf(err)
			}
		}
		statToAttr(&ust, out)
		return 0
	}
	if !st.hasLower {
		return syscall.ENOENT
	}
	if e := n.v.lowerAttr(st.lower, st.lowerPath, out); e != 0 {
		return e
	}
	n.io.mu.Lock()
	pinned := n.io.pinned
	n.io.mu.Unlock()
	if pinned != nil {
		// The old file of a path ws update changed: its size is the old
		// commit's conversion of it (v.snap would convert the old blob
		// by the new commit's rules, and the kernel would cut reads of
		// a handle opened before the update to that size).
		out.Size = uint64(pinned.Size())
		out.Blocks = (out.Size + 511) / 512
	}
	return 0
}

func kindIsDir(n *node) bool { return n.StableAttr().Mode == syscall.S_IFDIR }

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if uf, ok := f.(*upperFile); ok {
		return uf.Getattr(ctx, out)
	}
	if fd := n.io.detachedFd(); fd >= 0 {
		return (&upperFile{fd: fd}).Getattr(ctx, out)
	}
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	st := n.state()
	if e := n.liveOrLower(&st); e != 0 {
		return e
	}
	if e := n.getattr(&out.Attr); e != 0 {
		return e
	}
	if n.io.isDetached() {
		out.Attr.Nlink = 0 // a removed lower file: no name shows it
	}
	return 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	if e := n.live(); e != 0 {
		return nil, e
	}
	st := n.state()
	if st.upper {
		pfd, name, done, e := n.loc()
		if e != 0 {
			return nil, e
		}
		defer done()
		buf := make([]byte, 4096)
		for {
			k, err := unix.Readlinkat(pfd, name, buf)
			if err != nil {
				return nil, errnoOf(err)
			}
			if k < len(buf) {
				return buf[:k], 0
			}
			buf = make([]byte, 2*len(buf))
		}
	}
	if !st.hasLower || st.lower.Kind != snapshot.Symlink {
		return nil, syscall.EINVAL
	}
	target, err := n.v.snap.ReadLink(st.lower.ID)
	if err != nil {
		return nil, n.v.lowerErrno("readlink", st.lowerPath, err)
	}
	return []byte(target), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.v.mu.RLock()
	defer n.v.mu.RUnlock()
	fd := n.v.upperFd()
	var s syscall.Statfs_t
	var err error
	if fd < 0 {
		err = syscall.Statfs(n.v.fs.opts.Root, &s)
	} else {
		err = syscall.Fstatfs(fd, &s)
	}
	if err != nil {
		return errnoOf(err)
	}
	out.FromStatfsT(&s)
	return 0
}
