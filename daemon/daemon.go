//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	gfs "github.com/gitfs/gitfs/fs"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"

	"github.com/gitfs/gitfs/workspace"
)

// Config is what a daemon serves.
type Config struct {
	Root          string
	Mountpoint    string
	Mirrors       *mirror.Set
	Snapshots     *snapshot.Store
	Log           *slog.Logger
	FetchInterval time.Duration // 0: no background fetch
	Passthrough   bool
	OpenHandles   bool // per-open handles instead of no-open mode (fs.Options)
	IOURing       bool // FUSE over io_uring where the kernel offers it (fs.Options)
	// BrowseCommitTimes: browse paths' files each commit's own, with its
	// time (fs.Options).
	BrowseCommitTimes bool
	// Inflate makes every workspace's snapshot inflate its blobs into its
	// contents file in the background, so that cold reads and checkouts
	// of it copy instead of decompressing.
	Inflate bool
	// FSMonitor says whether workspaces' git dirs name gitfs as git's
	// fsmonitor hook: "on", "off", or "auto" (or ""): on with git >= 2.43
	// only, since older git's `git diff <commit>` may report files the
	// hook says are unchanged as deleted (diff-lib's check_removed used an
	// uninitialized stat; fixed in 2.43).
	FSMonitor string
}

// Daemon is a running mount plus its control socket.
type Daemon struct {
	cfg      Config
	fs       *gfs.FS
	srv      *http.Server
	lock     *locks.File // ROOT/locks/daemon.lock: one daemon per root
	sockPath string
	cancel   context.CancelFunc // stops background work
	bg       sync.WaitGroup     // background goroutines
	stopOnce sync.Once
	stopErr  error
	inflateq chan inflateJob // nil unless Config.Inflate
	mountDev uint64          // st_dev of the mount: exports into it are refused
	metrics  *metrics        // what --metrics-addr and gitfs stats show (metrics.go)
}

// Start mounts the file system, restores every workspace, and serves the
// control socket. Stop undoes all of it.
func Start(cfg Config) (*Daemon, error) {
	if err := PrepareRoot(cfg.Root); err != nil {
		return nil, err
	}
	lockPath := daemonLockPath(cfg.Root)
	lock, err := locks.TryExclusive(lockPath)
	if errors.Is(err, locks.ErrWouldBlock) {
		// A killed daemon may be stuck in the kernel holding it (takeover_linux.go).
		lock, err = takeOverLock(cfg.Root, lockPath, cfg.Log)
	}
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, lock: lock, sockPath: filepath.Join(cfg.Root, SocketName)}
	d.metrics = newMetrics(d)
	cfg.Mirrors.OnFetch(d.metrics.observeFetch)
	ok := false
	defer func() {
		if !ok {
			lock.Unlock()
		}
	}()
	mp, err := filepath.Abs(cfg.Mountpoint)
	if err != nil {
		return nil, err
	}
	d.cfg.Mountpoint = mp
	// The daemon mounts (and may detach a dead mount) wherever the path
	// leads when it gets there: no other user may be able to point it
	// elsewhere (safepath.go), or a root daemon would mount over, or
	// unmount, a directory of their choosing.
	euid := uint32(os.Geteuid())
	if _, _, err := mountPath.walk(mp, euid, 0); err != nil {
		return nil, err
	}
	// A dead daemon's mount makes the mount point fail with ENOTCONN
	// (mkdir: "file exists"): detach it first (mounts_linux.go).
	if err := healMountpoint(mp, cfg.Log); err != nil {
		return nil, err
	}
	if _, _, err := mountPath.walk(mp, euid, 0o755); err != nil {
		return nil, err
	}
	d.fs, err = gfs.New(gfs.Options{
		Root:              cfg.Root,
		Snapshots:         cfg.Snapshots,
		Resolver:          resolver{mirrors: cfg.Mirrors, snapshots: cfg.Snapshots},
		Log:               cfg.Log,
		Passthrough:       cfg.Passthrough,
		OpenHandles:       cfg.OpenHandles,
		IOURing:           cfg.IOURing,
		BrowseCommitTimes: cfg.BrowseCommitTimes,
		OwnerOnly:         ownerOnlyMount(cfg.Log),
		Observe:           d.metrics.observeFUSE,
		Git:               d.gitSource,
	})
	if err != nil {
		return nil, err
	}
	if err := d.fs.Mount(mp); err != nil {
		return nil, err
	}
	var mst unix.Stat_t
	if err := unix.Stat(mp, &mst); err == nil {
		d.mountDev = mst.Dev
		if err := writeDaemonRecord(cfg.Root, daemonRecord{PID: os.Getpid(), Mountpoint: mp, Dev: mst.Dev}); err != nil {
			cfg.Log.Warn("a kill -9 of this daemon may need its FUSE connection aborted by hand", "err", err)
		}
	}
	// We hold the daemon lock, so a socket file left here is a dead daemon's.
	os.Remove(d.sockPath)
	ln, err := net.Listen("unix", d.sockPath)
	if err == nil {
		// Any local user may connect; each request is then authorized by
		// the caller's credentials (authz.go).
		err = os.Chmod(d.sockPath, 0o666)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		d.fs.Unmount()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	d.srv = &http.Server{Handler: d.routes(), ReadHeaderTimeout: 10 * time.Second, ConnContext: withPeer}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		if err := d.srv.Serve(newLimitListener(ln, maxConnsPerUID)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("control socket stopped", "err", err)
		}
	}()
	if cfg.Inflate {
		d.inflateq = make(chan inflateJob, 256)
		for _, w := range d.fs.List() {
			d.queueInflate(w.Repo, w.Commit)
		}
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.inflateLoop(ctx)
		}()
	}
	if cfg.FetchInterval > 0 {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.fetchLoop(ctx)
		}()
	}
	ok = true
	return d, nil
}

// Mountpoint is where the file system is mounted.
func (d *Daemon) Mountpoint() string { return d.cfg.Mountpoint }

// Wait blocks until the file system is unmounted.
func (d *Daemon) Wait() { d.fs.Wait() }

// Stop stops background work and the control socket, and unmounts.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() {
		d.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.srv.Shutdown(ctx); err != nil {
			d.cfg.Log.Warn("control socket did not close cleanly", "err", err)
		}
		d.bg.Wait()
		os.Remove(d.sockPath)
		d.stopErr = d.fs.Unmount()
		d.lock.Unlock()
	})
	return d.stopErr
}

// maxRevLen bounds a revision a request names (git's own ref names are
// far shorter; the bound keeps a request from feeding git megabytes).
const maxRevLen = 1024

// spec resolves what a workspace should show: rev, merged into mergeInto
// when given (a synthetic merge commit, shared by every workspace of the
// same pair).
func (d *Daemon) spec(ctx context.Context, repo, rev, mergeInto string) (workspace.Spec, error) {
	for _, r := range []string{rev, mergeInto} {
		if len(r) > maxRevLen {
			return workspace.Spec{}, usageError{fmt.Errorf("revision of %d bytes: at most %d", len(r), maxRevLen)}
		}
	}
	m, err := d.cfg.Mirrors.Get(ctx, repo)
	if err != nil {
		return workspace.Spec{}, err
	}
	commit, err := resolveRev(ctx, m, d.cfg.Snapshots, rev)
	if err != nil {
		return workspace.Spec{}, err
	}
	spec := workspace.Spec{Repo: repo, Rev: rev, MergeInto: mergeInto, Commit: commit}
	if mergeInto == "" {
		return spec, nil
	}
	base, err := resolveRev(ctx, m, d.cfg.Snapshots, mergeInto)
	if err != nil {
		return workspace.Spec{}, err
	}
	merged, err := m.Merge(ctx, base, commit)
	if err != nil {
		return workspace.Spec{}, err
	}
	spec.Commit, spec.Base = merged, base
	return spec, nil
}

// resolveRev resolves rev with the snapshot store's fallback for commits
// the mirror lost but a published snapshot still serves.
func resolveRev(ctx context.Context, m *mirror.Mirror, snaps *snapshot.Store, rev string) (string, error) {
	return snaps.Resolve(ctx, m, rev)
}

func (d *Daemon) create(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return CreateResponse{}, err
	}
	if err := workspace.ValidateName(req.Name); err != nil {
		return CreateResponse{}, usageError{err}
	}
	if req.Repo == "" || req.Rev == "" {
		return CreateResponse{}, usageError{errors.New("a workspace needs --repo and --rev")}
	}
	if err := mirror.ValidateName(req.Repo); err != nil {
		return CreateResponse{}, usageError{err}
	}
	if err := d.mayUseRepo(p, req.Repo); err != nil {
		return CreateResponse{}, err
	}
	if _, err := d.fs.Get(req.Name); err == nil {
		return CreateResponse{}, fmt.Errorf("workspace %q: %w", req.Name, workspace.ErrExists)
	}
	if req.Fetch {
		if _, err := d.cfg.Mirrors.Fetch(ctx, req.Repo); err != nil {
			return CreateResponse{}, err
		}
	}
	spec, err := d.spec(ctx, req.Repo, req.Rev, req.MergeInto)
	if err != nil {
		return CreateResponse{}, err
	}
	a, err := d.cfg.Mirrors.Access(req.Repo)
	if err != nil {
		return CreateResponse{}, err
	}
	spec.UID, spec.GID, spec.Mode = ownership(p, a)
	path, err := d.fs.Create(ctx, req.Name, spec)
	if err != nil {
		return CreateResponse{}, err
	}
	d.queueInflate(req.Repo, spec.Commit)
	return CreateResponse{Path: path, Commit: spec.Commit}, nil
}

// ownership is who owns a new workspace's root and its mode: the caller,
// with the repository's group when the caller is in it, and no wider
// access than the repository's own (a private repository's workspace is
// 0700, as a clone in a private home directory would be; its owner may
// chmod it to share it).
func ownership(p *peer, a mirror.Access) (uid, gid, mode uint32) {
	uid, gid = p.uid, p.gid
	if a.Group != nil && a.Allows(p.uid, p.gid, p.groups) && (p.uid == 0 || p.gid == *a.Group || slices.Contains(p.groups, *a.Group)) {
		gid = *a.Group
	}
	return uid, gid, a.Mode()
}

// find returns workspace name if p may use it.
func (d *Daemon) find(p *peer, name string) (workspace.Meta, error) {
	if err := workspace.ValidateName(name); err != nil {
		return workspace.Meta{}, usageError{err}
	}
	w, err := d.fs.Get(name)
	if err != nil {
		return workspace.Meta{}, err
	}
	if err := mayUseWorkspace(p, w); err != nil {
		return workspace.Meta{}, err
	}
	return w, nil
}

func (d *Daemon) update(ctx context.Context, name string, req UpdateRequest) (UpdateResponse, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return UpdateResponse{}, err
	}
	info, err := d.find(p, name)
	if err != nil {
		return UpdateResponse{}, err
	}
	if err := d.mayUseRepo(p, info.Repo); err != nil {
		return UpdateResponse{}, err
	}
	if req.Fetch {
		if _, err := d.cfg.Mirrors.Fetch(ctx, info.Repo); err != nil {
			return UpdateResponse{}, err
		}
	}
	rev := info.Rev
	if req.Rev != "" {
		rev = req.Rev
	}
	spec, err := d.spec(ctx, info.Repo, rev, info.MergeInto)
	if err != nil {
		return UpdateResponse{}, err
	}
	spec.UID, spec.GID = info.UID, info.GID
	discard := workspace.KeepChanges
	switch {
	case req.Reset:
		discard = workspace.DiscardAll
	case req.DiscardChanges:
		discard = workspace.DiscardConflicting
	}
	if err := d.fs.Update(ctx, name, spec, discard); err != nil {
		return UpdateResponse{}, err
	}
	d.queueInflate(info.Repo, spec.Commit)
	return UpdateResponse{From: info.Commit, To: spec.Commit}, nil
}

func (d *Daemon) remove(ctx context.Context, name string) error {
	p, err := d.caller(ctx)
	if err != nil {
		return err
	}
	if _, err := d.find(p, name); err != nil {
		return err
	}
	return d.fs.Remove(name)
}

func (d *Daemon) status(ctx context.Context, name string) ([]workspace.Change, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := d.find(p, name); err != nil {
		return nil, err
	}
	return d.fs.Status(name)
}

// list returns the workspaces p may see: its own, or all for root.
func (d *Daemon) list(ctx context.Context) ([]Workspace, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return nil, err
	}
	out := []Workspace{}
	for _, in := range d.fs.List() {
		if mayUseWorkspace(p, in) != nil {
			continue
		}
		w := d.workspaceOf(in)
		if changes, err := d.fs.Status(in.Name); err == nil {
			w.ChangedFiles = len(changes)
		} else {
			w.ChangedFiles = -1
		}
		out = append(out, w)
	}
	return out, nil
}

// resolver answers the file system's ref lookups for browse paths from the
// mirrors, without the health check (it must stay cheap).
type resolver struct {
	mirrors   *mirror.Set
	snapshots *snapshot.Store
}

func (r resolver) Repos() ([]string, error) {
	infos, err := r.mirrors.List(context.Background())
	if err != nil {
		return nil, err
	}
	names := make([]string, len(infos))
	for i, in := range infos {
		names[i] = in.Name
	}
	return names, nil
}

func (r resolver) Resolve(ctx context.Context, repo, rev string) (string, error) {
	m, err := r.mirrors.Lookup(repo)
	var commit string
	if err == nil {
		commit, err = resolveRev(ctx, m, r.snapshots, rev)
	}
	if errors.Is(err, mirror.ErrUnknownRev) || errors.Is(err, mirror.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", gfs.ErrUnknown, err)
	}
	return commit, err
}

func (r resolver) Perm(repo string) (uid, gid, mode uint32, err error) {
	a, err := r.mirrors.Access(repo)
	if err != nil {
		return 0, 0, 0, err
	}
	return a.Owner, a.GID(), a.Mode(), nil
}

func (r resolver) Refs(ctx context.Context, repo, kind string) ([]string, error) {
	m, err := r.mirrors.Lookup(repo)
	if err != nil {
		return nil, err
	}
	return m.Refs(ctx, kind)
}
