//go:build linux

package fs

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// view is one tree served by the mount: a workspace (snapshot lower layer
// plus an upper layer on disk) or a read-only browse path (snapshot only:
// ws and layer are nil).
type view struct {
	fs       *FS
	id       uint64 // inode number namespace
	name     string // workspace name, or "@repo/..." for browse views
	readonly bool
	ws       *workspace.Workspace
	layer    *workspace.Layer
	uid, gid uint32 // owner of lower entries
	// gitReady is closed once the workspace's git dir is complete (made,
	// or moved to the workspace's commit by ws update); nil while no
	// maker ever ran (see git.go). Stored before the view is reachable,
	// or by Update under mu held for writing.
	gitReady atomic.Pointer[chan struct{}]
	// gitErr is how the last making or update of the git dir failed, set
	// before gitReady is closed; nil once it succeeded (repairGitDir).
	gitErr atomic.Pointer[error]
	// keptSnap releases the snapshot of a removed workspace whose files
	// the kernel may still read (FS.Remove), once it forgets the root.
	keptSnap atomic.Pointer[func()]

	// mu orders changes to the view's namespace (see the lock table in
	// doc.go): held for writing by every operation that changes the upper
	// layer, by Update and by Remove; for reading by lookups, readdir,
	// getattr, open and status.
	mu      sync.RWMutex
	snap    *snapshot.Snapshot // what the view shows; a workspace's is ws.Snapshot()
	lease   *lease             // a browse view's hold on snap (a workspace holds its own)
	epoch   uint64             // increments when snap changes
	times   lowerTimes         // what unchanged entries show as their times (attr.go)
	removed bool
	root    *node
	browse  *browseRootNode // a browse view's root, which embeds root (browse.go)

	// reissued holds, for each file whose local change ws update
	// discarded, the epoch of that update: its lower file then shows
	// under a new inode number (lowerIno), so that a descriptor held
	// across the update keeps the old inode and a new open gets the
	// lower file. Replaced whole by Update under mu held for writing;
	// read without a lock (the git dir's maker too).
	reissued atomic.Pointer[map[string]uint64]

	journal journal // changed paths, for git's fsmonitor (journal.go)
	push    pusher  // lower files pushed into the page cache (file.go)

	// filesMu guards openLower, the open lower handles (a leaf lock).
	filesMu   sync.Mutex
	openLower map[*lowerFile]struct{}
}

// upperFd is the upper layer's root descriptor, -1 for browse views and
// once closed. Caller holds mu.
func (v *view) upperFd() int {
	if v.layer == nil {
		return -1
	}
	return v.layer.Upper()
}

func (v *view) newRoot() *node {
	return &node{v: v, isRoot: true, dirfd: -1, anonFd: -1, upper: v.layer != nil,
		hasLowerPath: true, hasLower: true, lower: snapshot.Entry{Kind: snapshot.Dir, ID: v.snap.Root()}, epoch: v.epoch}
}

// close marks the view removed and releases its descriptors and lease,
// after the open lower handles have what they need to go on reading.
func (v *view) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.removed {
		return
	}
	v.removed = true
	v.pinOpenFiles()
	if v.ws != nil {
		// The git dir's maker writes with the workspace's descriptors. It
		// takes no view lock, and tells the kernel nothing until it is
		// done (git.go), so it is waited for under mu.
		v.awaitGitDir(context.Background())
		v.ws.Close()
		return
	}
	if v.lease != nil {
		v.lease.drop()
		v.lease = nil
	}
}

// unlease releases a browse view's snapshot when the kernel forgets its
// root, leaving the view unbuilt rather than removed: the root may be
// handed to the kernel again (browseRoot), and then leases anew on its
// next read (browseRootNode.ready). Nothing below the root is known to
// the kernel by then (a child's entry pins its parent's).
func (v *view) unlease() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.removed || v.snap == nil {
		return
	}
	v.pinOpenFiles()
	l := v.lease
	v.snap, v.lease = nil, nil // the same commit's again when leased anew
	if l != nil {
		l.drop() // shared files reading through it may hold it on (shared.go)
	}
}

// holdLease takes a reference on the browse view's lease for a shared
// file that reads through it, or returns nil if the view holds none (its
// root was forgotten, or it is removed).
func (v *view) holdLease() *lease {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed || v.lease == nil {
		return nil
	}
	v.lease.hold()
	return v.lease
}

// lease is a browse view's hold on its snapshot, counted: the view holds
// a reference while it shows the snapshot, and each shared file that
// reads through it another (shared.go), so that a file which other browse
// paths show keeps its bytes after the view that found it let go. The
// store's release runs at the last drop, or at Unmount for what shared
// files still hold then.
type lease struct {
	fs      *FS
	snap    *snapshot.Snapshot
	refs    atomic.Int64
	release func() // the store's; safe to call twice
}

func (f *FS) newLease(snap *snapshot.Snapshot, release func()) *lease {
	l := &lease{fs: f, snap: snap, release: release}
	l.refs.Store(1)
	f.mu.Lock()
	f.leases[l] = struct{}{}
	f.mu.Unlock()
	return l
}

// hold adds a reference; the caller has one, or holds the view's mu
// while the view has one.
func (l *lease) hold() { l.refs.Add(1) }

func (l *lease) drop() {
	if l.refs.Add(-1) != 0 {
		return
	}
	l.fs.mu.Lock()
	delete(l.fs.leases, l)
	l.fs.mu.Unlock()
	l.release()
}

// pinOpenFiles inflates the blobs of every open lower handle of v, so that
// they keep reading their commit after its snapshot is released. Caller
// holds v.mu for writing.
func (v *view) pinOpenFiles() {
	v.filesMu.Lock()
	files := make([]*lowerFile, 0, len(v.openLower))
	for f := range v.openLower {
		files = append(files, f)
	}
	v.filesMu.Unlock()
	for _, f := range files {
		if _, err := f.ensureBlob(); err != nil {
			v.lowerErrno("pin open file", f.path, err)
		}
	}
	v.pinChangedInodes() // no-open mode: inodes stand for handles (file.go)
}
