//go:build linux

package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/fuseuring"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Resolver resolves revisions for browse paths. The daemon implements it
// over mirror/; fs never opens a mirror.
type Resolver interface {
	Repos() ([]string, error)
	// Resolve returns the commit rev names in repo; an error that
	// errors.Is ErrUnknown when repo or rev names nothing (the lookup then
	// answers ENOENT; any other error is logged and answered EIO).
	Resolve(ctx context.Context, repo, rev string) (commit string, err error)
	// Refs lists branches ("heads") or tags ("tags") by short name, which
	// may contain '/'.
	Refs(ctx context.Context, repo, kind string) ([]string, error)
	// Perm gives the owner, group and permission bits of @repo, through
	// which the kernel (default_permissions) lets only the users the
	// repository is shared with read it.
	Perm(repo string) (uid, gid, mode uint32, err error)
}

// ErrUnknown is what a Resolver's errors wrap when a repository or
// revision names nothing.
var ErrUnknown = errors.New("unknown repository or revision")

// Options configure an FS.
type Options struct {
	Root        string // gitfs root: workspaces live in Root/workspaces/NAME
	Snapshots   *snapshot.Store
	Resolver    Resolver // may be nil: no browse paths
	Log         *slog.Logger
	Passthrough bool // FUSE passthrough for upper-layer files (kernel >= 6.9)
	// OpenHandles makes the kernel send OPEN and OPENDIR (and RELEASE) for
	// every open, so that each gets a handle: passthrough of upper files
	// becomes possible, at two round trips per open. Without it (the
	// default) the mount runs in no-open mode (raw.go): a warm read of a
	// tree costs no request, passthrough is off, and reads and writes
	// arrive by inode (file.go).
	OpenHandles bool
	// IOURing serves requests through FUSE over io_uring (internal/
	// fuseuring) when the kernel offers it (the fuse module's enable_uring;
	// root only): a round trip costs about half what it costs through
	// /dev/fuse. Without the kernel's offer the mount is served through
	// /dev/fuse by go-fuse's Server, as without it.
	IOURing bool
	// BrowseCommitTimes gives every file of a browse path its own inode and
	// its commit's time, as git archive does, instead of one inode per blob
	// with a time derived from it (shared.go), which lets diff -r of two
	// tags skip identical files.
	BrowseCommitTimes bool
	// OwnerOnly mounts without allow_other: only the mounting user, not
	// even root, may use the mount. For a non-root daemon on a host whose
	// /etc/fuse.conf lacks user_allow_other (fusermount3 refuses it).
	OwnerOnly bool
	// Observe, if set, is told of every FUSE request answered (the
	// daemon's metrics; observe.go).
	Observe Observer
	// Git gives what a workspace's git dir is made from (the daemon's
	// mirror); nil: workspaces get no git dir.
	Git func(repo string) (workspace.GitSource, error)
}

// FS is the file system. Create it with New, then Mount.
type FS struct {
	opts   Options
	log    *slog.Logger
	wsDir  string
	isRoot bool
	wsOpts workspace.Options

	fdBudget atomic.Int64 // descriptors nodes may still keep (directories, upper files' readers and writers)
	stats    counters

	// The first open of a file in a directory queues its siblings' blobs
	// for inflation by background workers (one per CPU), so that a tree
	// walk's cold reads find them inflated (node.prefetchSiblings). Best
	// effort: a full queue drops work.
	prefetchq    chan prefetchJob // never closed: requests may still come after Unmount
	prefetchQuit chan struct{}
	prefetchWG   sync.WaitGroup
	stopPrefetch sync.Once

	mu         sync.Mutex // guards the fields below (see the lock table in doc.go)
	ws         map[string]*view
	creating   map[string]bool
	browse     map[string]*view
	leases     map[*lease]struct{} // every browse lease not yet released (view.go)
	server     mountServer
	root       *rootNode
	mountpoint string
	started    time.Time

	dev atomic.Uint64 // st_dev of the mount, once mounted (for git's index)

	refs refCache // recent resolutions of browse paths' refs (browse.go)

	// browsing bounds the browse paths' resolutions and snapshot gets
	// running at once (browselimit.go).
	browsing *browseLimit
}

// Stats counts requests that reached the daemon (the kernel answers the
// rest from its caches).
type Stats struct {
	Lookups, Opens, LowerReads, LowerReadBytes, Inflations, CopyUps, Prefetched, Getxattrs int64
	Pushed                                                                                 int64 // files pushed into the page cache (file.go)
}

type counters struct {
	lookups, opens, lowerReads, lowerReadBytes, inflations, copyUps, prefetched, getxattrs atomic.Int64
	pushed                                                                                 atomic.Int64 // files pushed into the page cache (file.go)
}

// Stats returns the request counters since New.
func (f *FS) Stats() Stats {
	c := &f.stats
	return Stats{Lookups: c.lookups.Load(), Opens: c.opens.Load(), LowerReads: c.lowerReads.Load(),
		LowerReadBytes: c.lowerReadBytes.Load(), Inflations: c.inflations.Load(), CopyUps: c.copyUps.Load(),
		Prefetched: c.prefetched.Load(), Getxattrs: c.getxattrs.Load(), Pushed: c.pushed.Load()}
}

type prefetchJob struct {
	v     *view
	epoch uint64
	id    snapshot.ID
}

// prefetch queues blob id of v's current commit for inflation. Caller
// holds v.mu.
func (f *FS) prefetch(v *view, id snapshot.ID) {
	if f.prefetchq == nil {
		return
	}
	select {
	case f.prefetchq <- prefetchJob{v: v, epoch: v.epoch, id: id}:
	default:
	}
}

func (f *FS) prefetcher() {
	defer f.prefetchWG.Done()
	for {
		var j prefetchJob
		select {
		case <-f.prefetchQuit:
			return
		case j = <-f.prefetchq:
		}
		v := j.v
		v.mu.RLock()
		if !v.removed && v.snap != nil && v.epoch == j.epoch {
			if b, err := v.snap.Open(j.id); err == nil {
				b.Close()
				f.stats.prefetched.Add(1)
			}
		}
		v.mu.RUnlock()
	}
}

// New opens the workspaces under opts.Root, loading every existing one
// (after a restart, with its changes).
func New(opts Options) (*FS, error) {
	if opts.Root == "" || opts.Snapshots == nil {
		return nil, errors.New("gitfs fs: Root and Snapshots are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f := &FS{
		opts:     opts,
		log:      opts.Log,
		wsDir:    filepath.Join(opts.Root, "workspaces"),
		isRoot:   os.Geteuid() == 0,
		ws:       map[string]*view{},
		creating: map[string]bool{},
		browse:   map[string]*view{},
		leases:   map[*lease]struct{}{},
		started:  time.Now(),
		browsing: newBrowseLimit(),
	}
	f.prefetchq = make(chan prefetchJob, 4096)
	f.prefetchQuit = make(chan struct{})
	for i := 0; i < runtime.NumCPU(); i++ {
		f.prefetchWG.Add(1)
		go f.prefetcher()
	}
	f.wsOpts = workspace.Options{Root: opts.Root, Chown: f.isRoot, XattrPrefix: "user.gitfs."}
	if f.isRoot {
		f.wsOpts.XattrPrefix = "trusted.gitfs."
	}
	var lim unix.Rlimit
	budget := int64(1024)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 4096 {
		budget = int64(lim.Cur) / 4
	}
	f.fdBudget.Store(budget)
	if !opts.OpenHandles && opts.Passthrough {
		// Without OPEN the kernel opens files by itself, in cached mode,
		// and refuses (EIO) any such open of an inode that a passthrough
		// handle holds: another process could not even read a file while
		// its creator writes it (a log, an sqlite database).
		f.opts.Passthrough = false
	}
	if err := os.MkdirAll(f.wsDir, 0o700); err != nil {
		return nil, fmt.Errorf("workspaces: %w", err)
	}
	workspace.CleanStale(opts.Root) // leftovers of interrupted creates and removes
	names, err := workspace.Names(opts.Root)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		w, err := workspace.Load(context.Background(), f.wsOpts, workspace.Dir(opts.Root, name), opts.Snapshots)
		if err != nil {
			f.log.Error("gitfs: workspace not loaded (left on disk)", "workspace", name, "err", err)
			continue
		}
		v := f.workspaceView(w)
		f.ws[name] = v
		f.makeGitDir(v) // a crash may have left it incomplete
	}
	return f, nil
}

// workspaceView serves w.
func (f *FS) workspaceView(w *workspace.Workspace) *view {
	m := w.Meta()
	v := &view{fs: f, id: m.ID, name: m.Name, ws: w, layer: w.Layer(), snap: w.Snapshot(), uid: m.UID, gid: m.GID}
	v.times.base = w.Snapshot().CommitTime()
	if !m.Updated.IsZero() {
		// Which paths the updates changed, and when, is not kept across
		// restarts: everything shows the last update's time, never earlier
		// than what it showed (a build rebuilds, never misses a change).
		v.times.base = m.Updated
	}
	return v
}

// attach adds a workspace's root to the mounted tree. Caller holds f.mu.
func (f *FS) attach(ctx context.Context, v *view) {
	if f.root == nil || v.root != nil {
		return
	}
	rn := v.newRoot()
	ch := f.root.NewPersistentInode(ctx, rn, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(v.id, "root")})
	f.root.AddChild(v.name, ch, true)
	v.root = rn
}

// Mount mounts the file system at mountpoint and serves it in the
// background: as root with mount(2) directly, otherwise through fusermount3.
func (f *FS) Mount(mountpoint string) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("mount %s: /dev/fuse is missing (load the fuse module or run in a container with --device /dev/fuse): %w", mountpoint, err)
	}
	if !f.isRoot {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			return fmt.Errorf("mount %s: not running as root and fusermount3 is not installed (install fuse3, or run gitfs serve as root to mount directly)", mountpoint)
		}
	}
	abs, err := filepath.Abs(mountpoint)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mountpoint, err)
	}
	f.mu.Lock()
	if f.server != nil {
		f.mu.Unlock()
		return fmt.Errorf("mount %s: already mounted at %s", abs, f.mountpoint)
	}
	f.mu.Unlock()
	long := time.Hour
	root := &rootNode{fs: f}
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:    !f.opts.OwnerOnly,
			DirectMount:   f.isRoot, // falls back to fusermount3 if mount(2) fails
			FsName:        "gitfs",
			Name:          "gitfs",
			Options:       []string{"default_permissions"},
			MaxWrite:      1 << 20,
			MaxBackground: 64,
			// KILLPRIV_V2: no GETXATTR security.capability before every
			// write; raw.go clears suid/sgid instead.
			ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2 | f.openCapabilities(),
			// Symlinks are immutable once made (a change is a new inode);
			// ws update notifies the ones it changes.
			EnableSymlinkCaching: true,
		},
		EntryTimeout:    &long,
		AttrTimeout:     &long,
		NegativeTimeout: &long,
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
	}
	f.mu.Lock()
	f.root = root
	f.mountpoint = abs
	f.mu.Unlock()
	ioURing := false
	if f.opts.IOURing {
		switch err := fuseuring.Enabled(); {
		case !f.isRoot:
			f.log.Warn("gitfs: FUSE over io_uring needs a daemon that runs as root: serving through /dev/fuse")
		case err != nil:
			f.log.Warn("gitfs: serving through /dev/fuse", "err", err)
		default:
			ioURing = true
		}
	}
	server, err := mountRaw(abs, root, opts, f.opts.Observe, !f.opts.OpenHandles, ioURing)
	if err != nil {
		f.mu.Lock()
		f.root = nil
		for _, v := range f.ws {
			v.root = nil
		}
		f.mu.Unlock()
		how := "mount(2) as root, then fusermount3"
		if !f.isRoot {
			how = "fusermount3"
		}
		if _, lerr := exec.LookPath("fusermount3"); lerr != nil {
			how += " (not installed)"
		}
		return fmt.Errorf("mount %s with %s: %w", abs, how, err)
	}
	f.mu.Lock()
	f.server = server
	f.mu.Unlock()
	var st unix.Stat_t // through the mount: not under f.mu
	if unix.Stat(abs, &st) == nil {
		f.dev.Store(st.Dev)
	}
	f.log.Info("gitfs mounted", "mountpoint", abs, "workspaces", len(f.ws), "passthrough", f.opts.Passthrough, "io_uring", ioURing)
	return nil
}

// Unmount unmounts the file system and releases every snapshot lease. The
// FS cannot be mounted again.
func (f *FS) Unmount() error {
	f.mu.Lock()
	server, mnt := f.server, f.mountpoint
	f.mu.Unlock()
	var err error
	if server != nil {
		for i := 0; i < 4; i++ {
			if err = server.Unmount(); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err == nil {
			server.Wait()
		} else if derr := unix.Unmount(mnt, unix.MNT_DETACH); derr == nil {
			// Busy (a process has a file or directory open in it): detach
			// it, so that no dead mount stays behind. Open handles keep
			// working until closed, then the serve loop ends by itself.
			f.log.Warn("gitfs: mount busy, detached lazily", "mountpoint", mnt, "err", err)
			err = nil
			done := make(chan struct{})
			go func() { server.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
		}
	}
	f.mu.Lock()
	views := make([]*view, 0, len(f.ws)+len(f.browse))
	for _, v := range f.ws {
		views = append(views, v)
	}
	for _, v := range f.browse {
		views = append(views, v)
	}
	f.ws, f.browse = map[string]*view{}, map[string]*view{}
	f.server = nil
	f.mu.Unlock()
	f.stopPrefetch.Do(func() {
		close(f.prefetchQuit)
		f.prefetchWG.Wait()
	})
	for _, v := range views {
		v.close()
	}
	// What shared files held past their views: the kernel will not
	// forget them now.
	f.mu.Lock()
	leases := f.leases
	f.leases = map[*lease]struct{}{}
	f.mu.Unlock()
	for l := range leases {
		l.release()
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	return nil
}

// Wait blocks until the file system is unmounted.
func (f *FS) Wait() {
	f.mu.Lock()
	server := f.server
	f.mu.Unlock()
	if server != nil {
		server.Wait()
	}
}
