// Package fs is gitfs's FUSE adapter: one mount holding copy-on-write
// workspaces (a snapshot as the read-only lower layer plus the upper layer
// of changes that package workspace keeps on disk) and read-only browse
// paths (@repo/HEAD, heads/, tags/, commits/). It knows the kernel: nodes,
// handles, inode numbers, cache timeouts and invalidation; what a
// workspace is on disk is package workspace's, what a commit holds package
// snapshot's. fs opens no mirror: the daemon resolves revisions for it
// (Resolver).
//
// # Structure
//
// A file per concern: mount.go (FS, Mount, Unmount), workspaces.go (the
// registry the daemon calls: Create, Remove, Get, List, Status,
// PlanExport), update.go (ws update: the switch and kernel invalidation),
// browse.go (the mount's root and @repo paths), view.go (one tree served:
// a workspace or a browse path, and a browse path's lease), shared.go (a
// browse path's file, one inode wherever its blob shows), node.go (lookup, readdir, getattr,
// readlink, statfs), file.go (Open and the handles), create.go, remove.go,
// setattr.go, xattr.go (the handlers that change the upper layer), attr.go
// (attributes and inode numbers) and errno.go.
//
// # Errors
//
// Handlers return syscall.Errno. Errors become errnos in one place,
// errno.go: a system call's errno passes through; a failure to read the
// snapshot becomes EIO and is logged, since the caller sees only the
// number.
//
// # Kernel caching
//
// Lower content is immutable: entries and attributes are cached for an
// hour and files kept in the page cache (FOPEN_KEEP_CACHE), directory
// listings too (FOPEN_CACHE_DIR). An unchanged entry keeps its times
// across ws update (attr.go's lowerTimes), or the kernel would drop its
// pages when it next saw its attributes. A changed file gets a new inode number
// on ws update (so a descriptor opened before keeps its pages), and Update
// notifies the kernel of every path it changes (NotifyEntry,
// NotifyContent). Browse paths whose meaning moves (refs) are resolved
// again after 250 ms (browse.go's refTTL), and directories whose content moves (the root,
// ref directories) are listed afresh each time (raw.go). A browse path's file
// whose bytes are its blob's is one inode for every browse path of the
// repository that shows the blob (shared.go): its pages are cached once,
// and tools that compare two trees skip it.
//
// By default the mount runs in no-open mode (raw.go): the kernel sends no
// OPEN, OPENDIR, RELEASE or FLUSH, so a warm read of a tree costs no
// request at all; reads and writes arrive by inode (file.go's inode I/O),
// and the kernel itself caches what it opens. Options.OpenHandles gives
// every open a handle instead (and passthrough for upper files), at two
// round trips per open.
//
// # Locking
//
// Locks, in the order they may be taken (a lock may be taken while holding
// one above it, never one below):
//
//	sharedFile.mu guards a shared file's lease; held while it takes one
//	             (a view's, or the store's).
//	view.mu      RWMutex, one per view: orders changes to its namespace.
//	             Written by every handler that changes the upper layer,
//	             by Update and Remove; read by lookups, readdir, getattr,
//	             open and status. Never held while calling the kernel
//	             (Notify*), which may wait for a request waiting for it.
//	lowerFile.blobMu  guards a handle's blob.
//	node.mu      guards one node's cached state; at most one held at a time.
//	inodeIO.mu   guards a node's own descriptors and pinned blob (no-open
//	             mode); a leaf.
//	view.filesMu guards the view's open lower handles; a leaf.
//	FS.mu        guards the registries (workspaces, browse views) and the
//	             mount; a leaf: nothing else is taken while it is held
//	             (go-fuse's own tree locks aside), and it is never held
//	             while calling the kernel.
//	browseLimit.slots  a semaphore, not a mutex: one of max(4, NumCPU)
//	             slots held by a browse path's resolve, ref listing or
//	             snapshot get (browselimit.go); waited for interruptibly,
//	             taken with at most sharedFile.mu or browseRootNode.getting
//	             held, and no lock of this package is taken while it is
//	             held but refCache's. A user's share (userShare.places,
//	             half the slots; root has none) is a semaphore taken
//	             before a slot, the same way.
//	browseLimit.mu  guards the users' shares of the slots; a leaf.
//
// lowerFile.upMu is taken before view.mu (a read switching to the upper
// copy of its file); so is dirCursor.mu (raw.go: a READDIR without a
// handle holds its directory stream while the node layer lists), and
// rawFS.mu is a leaf. No lock here is shared with mirror fetch, snapshot
// builds or gc: reads take only view.mu for reading, which only this
// workspace's own changes and ws update ever hold for writing.
package fs
