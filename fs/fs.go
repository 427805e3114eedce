// Package fs is gitfs's FUSE file system: one mount holding copy-on-write
// workspaces (a snapshot as read-only lower layer plus an upper directory of
// changes on disk) and read-only browse paths (@repo/HEAD, heads/, tags/,
// commits/).
//
// Locks, in the order they may be taken:
//   - view.mu (one per workspace or browse view) orders namespace changes,
//     see view.
//   - node.mu guards one node's cached state; at most one is held.
//   - FS.mu guards the workspace and browse registries and the mount. It is
//     a leaf: nothing else is locked while it is held (go-fuse's own tree
//     locks aside), and it is never held while calling the kernel.
//
// No lock here is shared with mirror fetch, snapshot builds or gc: reads
// take only view.mu for reading, which only this workspace's own metadata
// changes and ws update ever hold for writing.
package fs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// Resolver resolves revisions for browse paths. The daemon implements it
// over mirror/; fs never opens a mirror.
type Resolver interface {
	Repos() ([]string, error)
	Resolve(ctx context.Context, repo, rev string) (commit string, err error)
	// Refs lists branches ("heads") or tags ("tags") by short name, which
	// may contain '/'.
	Refs(ctx context.Context, repo, kind string) ([]string, error)
	// Perm gives the owner, group and permission bits of @repo, through
	// which the kernel (default_permissions) lets only the users the
	// repository is shared with read it.
	Perm(repo string) (uid, gid, mode uint32, err error)
}

// Options configure an FS.
type Options struct {
	Root        string // gitfs root: workspaces live in Root/workspaces/NAME
	Snapshots   *snapshot.Store
	Resolver    Resolver // may be nil: no browse paths
	Log         *slog.Logger
	Passthrough bool // FUSE passthrough for upper-layer files (kernel >= 6.9)
}

// Spec says what a workspace shows. Commit is the resolved commit to show;
// Base the resolved base of a merge workspace (recorded only).
type Spec struct {
	Repo, Rev, MergeInto, Commit, Base string
	// UID and GID own the workspace's unchanged files and directories
	// (the daemon passes the requesting user's; zero is root).
	UID, GID uint32
	// Mode is the permission bits of the workspace's root directory at
	// creation (0: 0755); its owner may chmod it later.
	Mode uint32
}

// Info describes a workspace for `ws list`.
type Info struct {
	Name      string    `json:"name"`
	Repo      string    `json:"repo"`
	Rev       string    `json:"rev"`
	MergeInto string    `json:"merge_into,omitempty"`
	Commit    string    `json:"commit"`
	Base      string    `json:"base,omitempty"`
	Created   time.Time `json:"created"`
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
}

// Change is one changed path, as `git status --short` shows it: 'A'dded,
// 'M'odified, 'D'eleted, or 'R'enamed From another path.
type Change struct {
	Op   byte   `json:"op"`
	Path string `json:"path"`
	From string `json:"from,omitempty"`
}

// ErrNotFound reports an unknown workspace; ErrExists one that exists.
var (
	ErrNotFound = errors.New("no such workspace")
	ErrExists   = errors.New("workspace already exists")
)

// ConflictError is returned by Update when local changes touch paths that
// also changed between the old and the new commit.
type ConflictError struct {
	Workspace string
	Paths     []string
}

func (e *ConflictError) Error() string {
	shown := e.Paths
	more := ""
	if len(shown) > 20 {
		shown, more = shown[:20], fmt.Sprintf(" (and %d more)", len(e.Paths)-20)
	}
	return fmt.Sprintf("workspace %s: local changes conflict with the update: %s%s; keep them elsewhere or update with --discard-changes",
		e.Workspace, strings.Join(shown, ", "), more)
}

type wsMeta struct {
	Name      string    `json:"name"`
	ID        uint64    `json:"id"`
	Repo      string    `json:"repo"`
	Rev       string    `json:"rev"`
	MergeInto string    `json:"merge_into,omitempty"`
	Commit    string    `json:"commit"`
	Base      string    `json:"base,omitempty"`
	Created   time.Time `json:"created"`
	UID       uint32    `json:"uid"`
	GID       uint32    `json:"gid"`
}

// FS is the file system. Create it with New, then Mount.
type FS struct {
	opts   Options
	log    *slog.Logger
	wsDir  string
	xp     string // prefix of the upper layer's own xattrs
	isRoot bool

	fdBudget atomic.Int64 // directory descriptors nodes may still cache
	stats    counters

	// Listing a directory queues its files' blobs for inflation by
	// background workers (one per CPU), so that a tree walk's cold reads
	// find them inflated. Best effort: a full queue drops work.
	prefetchq    chan prefetchJob // never closed: requests may still come after Unmount
	prefetchQuit chan struct{}
	prefetchWG   sync.WaitGroup
	stopPrefetch sync.Once

	mu         sync.Mutex // see the package comment
	ws         map[string]*view
	creating   map[string]bool
	browse     map[string]*view
	server     *fuse.Server
	root       *rootNode
	mountpoint string
	started    time.Time
}

// Stats counts requests that reached the daemon (the kernel answers the
// rest from its caches).
type Stats struct {
	Lookups, Opens, LowerReads, LowerReadBytes, Inflations, CopyUps, Prefetched, Getxattrs int64
}

type counters struct {
	lookups, opens, lowerReads, lowerReadBytes, inflations, copyUps, prefetched, getxattrs atomic.Int64
}

// Stats returns the request counters since New.
func (f *FS) Stats() Stats {
	c := &f.stats
	return Stats{Lookups: c.lookups.Load(), Opens: c.opens.Load(), LowerReads: c.lowerReads.Load(),
		LowerReadBytes: c.lowerReadBytes.Load(), Inflations: c.inflations.Load(), CopyUps: c.copyUps.Load(),
		Prefetched: c.prefetched.Load(), Getxattrs: c.getxattrs.Load()}
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
		if !v.removed && v.epoch == j.epoch {
			if b, err := v.snap.Open(j.id); err == nil {
				b.Close()
				f.stats.prefetched.Add(1)
			}
		}
		v.mu.RUnlock()
	}
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// ValidateName checks a workspace name: [A-Za-z0-9._-]+, not starting with
// '.', '-' or '@', so that it is one safe path element and never taken for
// an option by a tool it is passed to.
func ValidateName(name string) error {
	if !validName.MatchString(name) || len(name) > 200 {
		return fmt.Errorf("invalid workspace name %q: use letters, digits, '.', '_' and '-', not starting with '.', '-' or '@'", name)
	}
	return nil
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
		started:  time.Now(),
	}
	f.prefetchq = make(chan prefetchJob, 4096)
	f.prefetchQuit = make(chan struct{})
	for i := 0; i < runtime.NumCPU(); i++ {
		f.prefetchWG.Add(1)
		go f.prefetcher()
	}
	f.xp = "user.gitfs."
	if f.isRoot {
		f.xp = "trusted.gitfs."
	}
	var lim unix.Rlimit
	budget := int64(1024)
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur > 4096 {
		budget = int64(lim.Cur) / 4
	}
	f.fdBudget.Store(budget)
	if err := os.MkdirAll(f.wsDir, 0o700); err != nil {
		return nil, fmt.Errorf("workspaces: %w", err)
	}
	entries, err := os.ReadDir(f.wsDir)
	if err != nil {
		return nil, fmt.Errorf("workspaces: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			// Leftovers of an interrupted create or remove.
			os.RemoveAll(filepath.Join(f.wsDir, name))
			continue
		}
		// Workspaces made before their directories were private: no user
		// may reach the upper layer on disk (only through the mount).
		os.Chmod(filepath.Join(f.wsDir, name), 0o700)
		v, err := f.load(name)
		if err != nil {
			f.log.Error("gitfs: workspace not loaded (left on disk)", "workspace", name, "err", err)
			continue
		}
		f.ws[name] = v
	}
	return f, nil
}

func readMeta(dir string) (wsMeta, error) {
	var m wsMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("meta.json: %w", err)
	}
	if !mirror.IsFullSHA(m.Commit) || m.Repo == "" {
		return m, errors.New("meta.json: no repo or commit")
	}
	return m, nil
}

// writeMeta replaces dir/meta.json atomically and durably.
func writeMeta(dir string, m wsMeta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".meta-*")
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "meta.json"))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// load opens the workspace in wsDir/name.
func (f *FS) load(name string) (*view, error) {
	dir := filepath.Join(f.wsDir, name)
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	snap, release, err := f.opts.Snapshots.Get(context.Background(), m.Repo, m.Commit)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w", m.Commit, m.Repo, err)
	}
	v, err := f.openView(dir, m, snap, release)
	if err != nil {
		release()
		return nil, err
	}
	return v, nil
}

func (f *FS) openView(dir string, m wsMeta, snap *snapshot.Snapshot, release func()) (*view, error) {
	for _, sub := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("workspace %s: %w", m.Name, err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "work"), 0o700); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", m.Name, err)
	}
	upperFd, err := unix.Open(filepath.Join(dir, "upper"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: upper: %w", m.Name, err)
	}
	workFd, err := unix.Open(filepath.Join(dir, "work"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(upperFd)
		return nil, fmt.Errorf("workspace %s: work: %w", m.Name, err)
	}
	// Temp entries of operations a crash interrupted.
	if names, err := readDirNames(workFd); err == nil {
		for _, n := range names {
			removeAllAt(workFd, n)
		}
	}
	v := &view{fs: f, id: m.ID, name: m.Name, dir: dir, snap: snap, release: release, meta: m,
		upperFd: upperFd, workFd: workFd, uid: m.UID, gid: m.GID}
	return v, nil
}

func (v *view) newRoot() *node {
	return &node{v: v, isRoot: true, dirfd: -1, anonFd: -1, upper: v.upperFd >= 0,
		hasLowerPath: true, hasLower: true, lower: snapshot.Entry{Kind: snapshot.Dir, ID: v.snap.Root()}, epoch: v.epoch}
}

// attach adds a workspace's root to the mounted tree. Caller holds f.mu.
func (f *FS) attach(ctx context.Context, v *view) {
	if f.root == nil || v.root != nil {
		return
	}
	rn := v.newRoot()
	ch := f.root.NewPersistentInode(ctx, rn, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(v.id, "root")})
	f.root.AddChild(v.meta.Name, ch, true)
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
			AllowOther:    true,
			DirectMount:   f.isRoot, // falls back to fusermount3 if mount(2) fails
			FsName:        "gitfs",
			Name:          "gitfs",
			Options:       []string{"default_permissions"},
			MaxWrite:      1 << 20,
			MaxBackground: 64,
			// O_TRUNC arrives with OPEN, so `> file` on an unchanged file
			// copies up nothing instead of the whole file.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
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
	server, err := gofs.Mount(abs, root, opts)
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
	f.log.Info("gitfs mounted", "mountpoint", abs, "workspaces", len(f.ws), "passthrough", f.opts.Passthrough)
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
	if err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	return nil
}

// close marks the view removed and releases its descriptors and lease.
func (v *view) close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.removed {
		return
	}
	v.removed = true
	v.pinOpenFiles()
	if v.upperFd >= 0 {
		unix.Close(v.upperFd)
	}
	if v.workFd >= 0 {
		unix.Close(v.workFd)
	}
	v.upperFd, v.workFd = -1, -1
	if v.release != nil {
		v.release()
	}
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

func randomID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// Create makes workspace name showing spec.Commit, in time independent of
// the tree's size: it leases the snapshot and writes the workspace's meta.
// It returns the workspace's path in the mount.
func (f *FS) Create(ctx context.Context, name string, spec Spec) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if spec.Repo == "" {
		return "", fmt.Errorf("create workspace %s: no repository given", name)
	}
	if !mirror.IsFullSHA(spec.Commit) {
		return "", fmt.Errorf("create workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	if err := f.knownRepo(spec.Repo); err != nil {
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	f.mu.Lock()
	if f.ws[name] != nil || f.creating[name] {
		f.mu.Unlock()
		return "", fmt.Errorf("create workspace %s: %w", name, ErrExists)
	}
	f.creating[name] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.creating, name)
		f.mu.Unlock()
	}()
	dir := filepath.Join(f.wsDir, name)
	if _, err := os.Lstat(dir); err == nil {
		return "", fmt.Errorf("create workspace %s: %w (on disk but not loaded: see the daemon log, or remove %s)", name, ErrExists, dir)
	}
	snap, release, err := f.opts.Snapshots.Get(ctx, spec.Repo, spec.Commit)
	if err != nil {
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	m := wsMeta{Name: name, ID: randomID(), Repo: spec.Repo, Rev: spec.Rev, MergeInto: spec.MergeInto,
		Commit: spec.Commit, Base: spec.Base, Created: time.Now().UTC(), UID: spec.UID, GID: spec.GID}
	mode := spec.Mode & 0o777
	if mode == 0 {
		mode = 0o755
	}
	// MkdirTemp makes it 0700: users reach a workspace's files only through
	// the mount, never on disk, where they could lay links for the daemon.
	tmp, err := os.MkdirTemp(f.wsDir, "."+name+".tmp-")
	if err == nil {
		err = os.Mkdir(filepath.Join(tmp, "upper"), 0o700)
	}
	if err == nil {
		// The workspace's root directory belongs to its user, as a checkout would.
		err = os.Chmod(filepath.Join(tmp, "upper"), os.FileMode(mode))
		if err == nil && f.isRoot {
			err = os.Chown(filepath.Join(tmp, "upper"), int(spec.UID), int(spec.GID))
		}
		if err == nil {
			ct := snap.CommitTime()
			err = os.Chtimes(filepath.Join(tmp, "upper"), ct, ct)
		}
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(tmp, "work"), 0o700)
	}
	if err == nil {
		err = writeMeta(tmp, m)
	}
	if err == nil {
		err = renameNoReplace(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir)
	}
	if err == nil {
		err = syncDir(f.wsDir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		release()
		if errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("create workspace %s: %w", name, ErrExists)
		}
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	v, err := f.openView(dir, m, snap, release)
	if err != nil {
		os.RemoveAll(dir)
		release()
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	f.mu.Lock()
	f.ws[name] = v
	f.attach(ctx, v)
	root, mnt, mounted := f.root, f.mountpoint, f.server != nil
	f.mu.Unlock()
	if root != nil && mounted {
		root.NotifyEntry(name) // drop a cached negative entry
	}
	f.log.Info("workspace created", "workspace", name, "repo", spec.Repo, "commit", spec.Commit)
	return filepath.Join(mnt, name), nil
}

// knownRepo checks that repo names a mirror.
func (f *FS) knownRepo(repo string) error {
	if err := mirror.ValidateName(repo); err != nil {
		return err
	}
	if f.opts.Resolver == nil {
		return nil
	}
	repos, err := f.opts.Resolver.Repos()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if r == repo {
			return nil
		}
	}
	return fmt.Errorf("unknown repository %q: add it with `gitfs repo add`", repo)
}

func (f *FS) get(name string) (*view, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.ws[name]
	if v == nil {
		return nil, fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	return v, nil
}

// Remove deletes workspace name and its changes. Open files keep working
// until closed; new lookups fail.
func (f *FS) Remove(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	v, err := f.get(name)
	if err != nil {
		return err
	}
	trash, err := os.MkdirTemp(f.wsDir, "."+name+".trash-")
	if err != nil {
		return fmt.Errorf("remove workspace %s: %w", name, err)
	}
	v.mu.Lock()
	if v.removed {
		v.mu.Unlock()
		os.Remove(trash)
		return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	if err := os.Rename(v.dir, filepath.Join(trash, name)); err != nil {
		v.mu.Unlock()
		os.Remove(trash)
		return fmt.Errorf("remove workspace %s: %w", name, err)
	}
	syncDir(f.wsDir)
	v.mu.Unlock()
	v.close()
	f.mu.Lock()
	delete(f.ws, name)
	root, mounted := f.root, f.server != nil
	var ch *gofs.Inode
	if root != nil {
		ch = root.GetChild(name)
		root.RmChild(name)
	}
	f.mu.Unlock()
	if root != nil && mounted {
		if ch != nil {
			root.NotifyDelete(name, ch)
			ch.ForgetPersistent()
		} else {
			root.NotifyEntry(name)
		}
	}
	go os.RemoveAll(trash)
	f.log.Info("workspace removed", "workspace", name)
	return nil
}

func (v *view) info() Info {
	return Info{Name: v.meta.Name, Repo: v.meta.Repo, Rev: v.meta.Rev, MergeInto: v.meta.MergeInto,
		Commit: v.meta.Commit, Base: v.meta.Base, Created: v.meta.Created, UID: v.meta.UID, GID: v.meta.GID}
}

// Get describes workspace name, computing nothing (no status).
func (f *FS) Get(name string) (Info, error) {
	v, err := f.get(name)
	if err != nil {
		return Info{}, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return Info{}, fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	return v.info(), nil
}

// List describes every workspace, sorted by name, computing nothing (no
// status: that walks a workspace's upper layer).
func (f *FS) List() []Info {
	f.mu.Lock()
	views := make([]*view, 0, len(f.ws))
	for _, v := range f.ws {
		views = append(views, v)
	}
	f.mu.Unlock()
	out := make([]Info, 0, len(views))
	for _, v := range views {
		v.mu.RLock()
		if !v.removed {
			out = append(out, v.info())
		}
		v.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status lists the workspace's changes against its commit, sorted by path.
func (f *FS) Status(name string) ([]Change, error) {
	v, err := f.get(name)
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	ch, err := v.changes()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", name, err)
	}
	return ch, nil
}

// WorkspaceCommits returns the commits of all workspaces on disk under root
// (gc keeps their snapshots even while no daemon runs).
func WorkspaceCommits(root string) (map[string]bool, error) {
	keep := map[string]bool{}
	metas, err := filepath.Glob(filepath.Join(root, "workspaces", "*", "meta.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range metas {
		m, err := readMeta(filepath.Dir(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		keep[m.Commit] = true
	}
	return keep, nil
}
