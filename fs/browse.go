//go:build linux

package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Entries whose meaning can change without the kernel being told (refs that
// a fetch moves, repositories added) are given a ~zero entry timeout, so
// they are resolved again on every lookup. The trees below them are
// immutable and cached for long.
const volatile = time.Nanosecond

// refTTL is how long a resolved ref (a branch, a tag, HEAD, the list of
// repositories), and the kernel's entry for it, is trusted: a moved branch
// shows within it. Resolving on every access made each path walk through
// a ref cost a rev-parse: `diff -r` of two tags' browse paths sent 20k
// LOOKUPs at 3.3 ms each, 27 s against 1 s for two workspaces.
const refTTL = 250 * time.Millisecond

// refCache holds recent resolutions of refs for browse paths.
type refCache struct {
	// mu guards m; a leaf.
	mu sync.Mutex
	m  map[string]refHit
}

type refHit struct {
	commit string
	at     time.Time
}

// refCacheMax bounds the cache: beyond it, it starts over.
const refCacheMax = 4096

func (c *refCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[key]
	if !ok || time.Since(h.at) >= refTTL {
		return "", false
	}
	return h.commit, true
}

func (c *refCache) put(key, commit string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= refCacheMax {
		c.m = map[string]refHit{}
	}
	c.m[key] = refHit{commit: commit, at: time.Now()}
}

func dirAttr(out *fuse.Attr, t time.Time) {
	out.Mode = syscall.S_IFDIR | 0o755
	out.Nlink = 2
	out.Size = 4096
	setTimes(out, t)
}

// rootNode is the mount's root: workspaces and @repo directories.
type rootNode struct {
	gofs.Inode
	fs *FS
}

var (
	_ gofs.NodeOnAdder   = (*rootNode)(nil)
	_ gofs.NodeLookuper  = (*rootNode)(nil)
	_ gofs.NodeReaddirer = (*rootNode)(nil)
	_ gofs.NodeGetattrer = (*rootNode)(nil)
	_ gofs.NodeStatfser  = (*rootNode)(nil)
)

func (r *rootNode) OnAdd(ctx context.Context) {
	f := r.fs
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.ws {
		f.attach(ctx, v)
	}
}

// Getattr: the mount's root and ref directories say their content changed
// now, whenever asked: it moves without the kernel being told, and a
// moved mtime is what makes the kernel drop its cached listing (raw.go).
func (r *rootNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr, time.Now())
	return 0
}

func (r *rootNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var s syscall.Statfs_t
	if err := syscall.Statfs(r.fs.wsDir, &s); err != nil {
		return errnoOf(err)
	}
	out.FromStatfsT(&s)
	return 0
}

func (r *rootNode) repos() []string {
	if r.fs.opts.Resolver == nil {
		return nil
	}
	repos, err := r.fs.opts.Resolver.Repos()
	if err != nil {
		r.fs.log.Warn("gitfs: listing repositories", "err", err)
		return nil
	}
	return repos
}

func (r *rootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f := r.fs
	out.SetEntryTimeout(volatile) // also keeps a failed lookup uncached
	if repo, ok := strings.CutPrefix(name, "@"); ok {
		found := false
		for _, rp := range r.repos() {
			if rp == repo {
				found = true
				break
			}
		}
		if !found {
			return nil, syscall.ENOENT
		}
		if e := f.repoAttr(repo, &out.Attr); e != 0 {
			return nil, e
		}
		out.SetAttrTimeout(repoAttrTimeout)
		out.SetEntryTimeout(refTTL)
		if ch := r.GetChild(name); ch != nil {
			return ch, 0
		}
		return r.NewInode(ctx, &repoNode{fs: f, repo: repo}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(0, "repo", repo)}), 0
	}
	f.mu.Lock()
	v := f.ws[name]
	var rn *node
	if v != nil {
		rn = v.root
	}
	f.mu.Unlock()
	if rn == nil {
		return nil, syscall.ENOENT
	}
	out.SetEntryTimeout(0) // workspace roots: the long default; Create/Remove notify
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, syscall.ENOENT
	}
	if e := rn.getattr(&out.Attr); e != 0 {
		return nil, e
	}
	return rn.EmbeddedInode(), 0
}

func (r *rootNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	f := r.fs
	f.mu.Lock()
	var list []fuse.DirEntry
	for name, v := range f.ws {
		if v.root != nil {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: hashIno(v.id, "root")})
		}
	}
	f.mu.Unlock()
	for _, repo := range r.repos() {
		list = append(list, fuse.DirEntry{Name: "@" + repo, Mode: syscall.S_IFDIR, Ino: hashIno(0, "repo", repo)})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return gofs.NewListDirStream(list), 0
}

// readOnly answers every change under the browse paths with EROFS.
type readOnly struct{ gofs.Inode }

func (*readOnly) Mkdir(context.Context, string, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*readOnly) Create(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EROFS
}
func (*readOnly) Unlink(context.Context, string) syscall.Errno { return syscall.EROFS }
func (*readOnly) Rmdir(context.Context, string) syscall.Errno  { return syscall.EROFS }
func (*readOnly) Rename(context.Context, string, gofs.InodeEmbedder, string, uint32) syscall.Errno {
	return syscall.EROFS
}
func (*readOnly) Symlink(context.Context, string, string, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*readOnly) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return nil, syscall.EROFS
}
func (*readOnly) Setattr(context.Context, gofs.FileHandle, *fuse.SetAttrIn, *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// repoNode is @repo: HEAD, heads/, tags/, commits/.
type repoNode struct {
	readOnly
	fs   *FS
	repo string
}

func (r *repoNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.SetTimeout(repoAttrTimeout)
	return r.fs.repoAttr(r.repo, &out.Attr)
}

// repoAttrTimeout is how long the kernel may keep @repo's owner and mode:
// a change of who may read a repository takes effect within it.
const repoAttrTimeout = time.Second

// repoAttr fills the attributes of @repo: owned and moded so that the
// kernel, checking permissions itself (default_permissions), lets through
// only the users the repository is shared with.
func (f *FS) repoAttr(repo string, out *fuse.Attr) syscall.Errno {
	uid, gid, mode, err := f.opts.Resolver.Perm(repo)
	if err != nil {
		f.log.Warn("gitfs: repository access", "repo", repo, "err", err)
		return syscall.EIO
	}
	dirAttr(out, f.started)
	out.Mode = syscall.S_IFDIR | mode&0o777
	out.Uid, out.Gid = uid, gid
	return 0
}

func (r *repoNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	for _, n := range []string{"HEAD", "commits", "heads", "tags"} {
		list = append(list, fuse.DirEntry{Name: n, Mode: syscall.S_IFDIR, Ino: hashIno(0, "repo", r.repo, n)})
	}
	return gofs.NewListDirStream(list), 0
}

func (r *repoNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f := r.fs
	out.SetEntryTimeout(volatile)
	switch name {
	case "HEAD":
		commit, e := f.resolve(ctx, r.repo, "HEAD")
		if e != 0 {
			return nil, e
		}
		out.SetEntryTimeout(refTTL)
		return f.browseRoot(ctx, &r.Inode, r.repo, "HEAD", commit, out)
	case "heads", "tags":
		dirAttr(&out.Attr, f.started)
		out.SetEntryTimeout(0) // fixed names: the long default
		if ch := r.GetChild(name); ch != nil {
			return ch, 0
		}
		return r.NewInode(ctx, &refDir{fs: f, repo: r.repo, kind: name}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(0, "repo", r.repo, name)}), 0
	case "commits":
		dirAttr(&out.Attr, f.started)
		out.SetEntryTimeout(0)
		if ch := r.GetChild(name); ch != nil {
			return ch, 0
		}
		return r.NewInode(ctx, &commitsDir{fs: f, repo: r.repo}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(0, "repo", r.repo, name)}), 0
	}
	return nil, syscall.ENOENT
}

// refDir is heads/ or tags/ (or a directory level of refs named a/b/c).
type refDir struct {
	readOnly
	fs     *FS
	repo   string
	kind   string // "heads" or "tags"
	prefix string // "" or "a/b/"
}

func (d *refDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr, time.Now()) // see rootNode.Getattr
	return 0
}

func (d *refDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	done, e := d.fs.browsing.acquire(ctx)
	if e != 0 {
		return nil, e
	}
	defer done()
	dctx, cancel := detach(ctx)
	defer cancel()
	refs, err := d.fs.opts.Resolver.Refs(dctx, d.repo, d.kind)
	if err != nil {
		d.fs.log.Warn("gitfs: listing refs", "repo", d.repo, "kind", d.kind, "err", err)
		return nil, syscall.EIO
	}
	seen := map[string]bool{}
	var list []fuse.DirEntry
	for _, ref := range refs {
		rest, ok := strings.CutPrefix(ref, d.prefix)
		if !ok || rest == "" {
			continue
		}
		first, _, _ := strings.Cut(rest, "/")
		if seen[first] {
			continue
		}
		seen[first] = true
		list = append(list, fuse.DirEntry{Name: first, Mode: syscall.S_IFDIR})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return gofs.NewListDirStream(list), 0
}

// OpendirHandle lists the refs through a handle whose Lookup declines:
// the kernel's READDIRPLUS would otherwise look up every ref it lists, a
// resolve each; an entry given without attributes it leaves for a LOOKUP
// when the name is used. Flags 0: the listing is not kept (raw.go lists
// it afresh every time, refs move).
func (d *refDir) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	ds, e := d.Readdir(ctx)
	if e != 0 {
		return nil, 0, e
	}
	return &listing{ds: ds}, 0, 0
}

// listing is a directory handle whose READDIRPLUS gives attributes only
// for the names lookup answers: an entry it declines (an error) goes out
// bare, and the kernel leaves it for a LOOKUP when the name is used.
type listing struct {
	ds     gofs.DirStream
	lookup func(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) // nil: declines all
	// released, if set, runs when the listing is done with (raw.go
	// releases it in the request after its last entry).
	released func()
}

var (
	_ gofs.FileReaddirenter = (*listing)(nil)
	_ gofs.FileLookuper     = (*listing)(nil)
	_ gofs.FileSeekdirer    = (*listing)(nil)
	_ gofs.FileReleasedirer = (*listing)(nil)
)

func (l *listing) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !l.ds.HasNext() {
		return nil, 0
	}
	e, errno := l.ds.Next()
	return &e, errno
}

func (l *listing) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if l.lookup == nil {
		return nil, syscall.ENOENT
	}
	return l.lookup(ctx, name, out)
}

func (l *listing) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if sd, ok := l.ds.(gofs.FileSeekdirer); ok {
		return sd.Seekdir(ctx, off)
	}
	return syscall.ENOTSUP
}

func (l *listing) Releasedir(ctx context.Context, flags uint32) {
	l.ds.Close()
	if l.released != nil {
		l.released()
	}
}

func (d *refDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f := d.fs
	out.SetEntryTimeout(volatile)
	full := d.prefix + name
	commit, e := f.resolve(ctx, d.repo, "refs/"+d.kind+"/"+full)
	if e == 0 {
		out.SetEntryTimeout(refTTL)
		return f.browseRoot(ctx, &d.Inode, d.repo, d.kind+"/"+full, commit, out)
	}
	if e != syscall.ENOENT {
		return nil, e
	}
	done, e := f.browsing.acquire(ctx)
	if e != 0 {
		return nil, e
	}
	defer done()
	dctx, cancel := detach(ctx)
	defer cancel()
	refs, err := f.opts.Resolver.Refs(dctx, d.repo, d.kind)
	if err != nil {
		f.log.Warn("gitfs: listing refs", "repo", d.repo, "kind", d.kind, "err", err)
		return nil, syscall.EIO
	}
	for _, ref := range refs {
		if strings.HasPrefix(ref, full+"/") {
			dirAttr(&out.Attr, f.started)
			out.SetEntryTimeout(refTTL)
			ino := hashIno(0, "refdir", d.repo, d.kind, full)
			if ch := d.GetChild(name); ch != nil && ch.StableAttr().Ino == ino {
				return ch, 0
			}
			return d.NewInode(ctx, &refDir{fs: f, repo: d.repo, kind: d.kind, prefix: full + "/"}, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: ino}), 0
		}
	}
	return nil, syscall.ENOENT
}

// commitsDir is commits/: any full commit id can be looked up; it lists nothing.
type commitsDir struct {
	readOnly
	fs   *FS
	repo string
}

func (d *commitsDir) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	dirAttr(&out.Attr, d.fs.started)
	return 0
}

func (d *commitsDir) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	return gofs.NewListDirStream(nil), 0
}

// Lookup accepts a commit id, full or abbreviated (4 to 39 hex digits) as
// rev-parse takes it. A full one names the same commit forever (the long
// entry timeout); an abbreviated one is resolved again on every lookup
// (a fetch may make it ambiguous), and one that resolves to no commit
// starting with it (a branch or tag of that name), or to several (logged,
// with how many start with it), is ENOENT.
func (d *commitsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	out.SetEntryTimeout(volatile)
	full := workspace.IsCommitID(name)
	if !full && !isAbbrev(name) {
		return nil, syscall.ENOENT
	}
	commit, e := d.fs.resolve(ctx, d.repo, name)
	if e == syscall.EIO && !full {
		return nil, syscall.ENOENT // resolve logged why (ambiguous, most often)
	}
	if e != 0 {
		return nil, e
	}
	if !strings.HasPrefix(commit, strings.ToLower(name)) {
		return nil, syscall.ENOENT
	}
	ch, e := d.fs.browseRoot(ctx, &d.Inode, d.repo, "commits/"+name, commit, out)
	switch {
	case e == 0 && full:
		out.SetEntryTimeout(0) // immutable: the long default
	case e == 0:
		out.SetEntryTimeout(refTTL) // may become ambiguous with a fetch
	}
	return ch, e
}

// isAbbrev reports whether name is an abbreviated object id as git takes
// one: 4 to 39 hex digits, either case.
func isAbbrev(name string) bool {
	if len(name) < 4 || len(name) > 39 {
		return false
	}
	for _, c := range name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// detach keeps a request's values but not its cancellation: the kernel
// interrupts requests whenever the caller gets a signal (Go programs get
// SIGURG all the time), and a half-done resolve must not turn into ENOENT.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
}

// resolve resolves rev in repo: ENOENT if it names nothing, EIO (logged)
// if resolving failed. A success is remembered for refTTL.
func (f *FS) resolve(ctx context.Context, repo, rev string) (string, syscall.Errno) {
	key := repo + "\x00" + rev
	if commit, ok := f.refs.get(key); ok {
		return commit, 0
	}
	done, e := f.browsing.acquire(ctx)
	if e != 0 {
		return "", e
	}
	defer done()
	dctx, cancel := detach(ctx)
	defer cancel()
	commit, err := f.opts.Resolver.Resolve(dctx, repo, rev)
	if err == nil {
		f.refs.put(key, commit)
		return commit, 0
	}
	if errors.Is(err, ErrUnknown) {
		return "", syscall.ENOENT
	}
	f.log.Warn("gitfs: resolving for a browse path", "repo", repo, "rev", rev, "err", err)
	return "", syscall.EIO
}

// browseRoot returns the root of a read-only view of commit, reached as key
// ("heads/main", "commits/<sha>"). Each (key, commit) is its own directory:
// when a ref moves, the next lookup gets a new one, while open handles and
// working directories keep the old. The view takes its snapshot (building
// it if need be) only when something inside the root is first read
// (browseRootNode), and leases it until the kernel forgets the root: a
// listing of heads/ or tags/, or a stat of a ref, builds nothing.
func (f *FS) browseRoot(ctx context.Context, parent *gofs.Inode, repo, key, commit string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	k := repo + "\x00" + key + "\x00" + commit
	f.mu.Lock()
	v := f.browse[k]
	if v == nil {
		v = &view{fs: f, id: hashIno(0, "browse", k), name: "@" + repo + "/" + key, readonly: true}
		r := &browseRootNode{repo: repo, commit: commit, key: k}
		r.node = node{v: v, isRoot: true, dirfd: -1, anonFd: -1, hasLowerPath: true, hasLower: true,
			lower: snapshot.Entry{Kind: snapshot.Dir}}
		v.root, v.browse = &r.node, r
		nv := v
		// A forgotten root drops its lease but stays usable: a lookup
		// that took it from f.browse just before the forget hands it
		// to the kernel again (go-fuse registers a forgotten node
		// anew), and its next read leases the snapshot again (ready).
		// Closing it made that read ENOENT.
		r.forget = func() {
			f.mu.Lock()
			if f.browse[k] == nv {
				delete(f.browse, k)
			}
			f.mu.Unlock()
			nv.unlease()
		}
		f.browse[k] = v
	}
	f.mu.Unlock()
	v.mu.RLock()
	removed, built := v.removed, v.snap != nil
	var e syscall.Errno
	if !removed && built {
		e = v.root.getattr(&out.Attr)
	}
	v.mu.RUnlock()
	if removed {
		return nil, syscall.ENOENT
	}
	if !built {
		unbuiltAttr(v, &out.Attr)
	}
	if e != 0 {
		return nil, e
	}
	// NewInode returns the existing Inode once the node has one; f.mu
	// makes the first initialisation happen once.
	f.mu.Lock()
	defer f.mu.Unlock()
	return parent.NewInode(ctx, v.browse, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(v.id, "root")}), 0
}

// browseRootNode is a browse path's root, whose view gets its snapshot on
// the first lookup or listing inside it. Until then its attributes are a
// plain directory's, with the mount's start as mtime (the commit's time
// needs the snapshot); after, the commit's.
type browseRootNode struct {
	node
	repo, commit string
	key          string // in FS.browse
	forget       func() // releases the view's lease (browseRoot)
	// getting serializes getting the snapshot. Order: before view.mu.
	getting sync.Mutex
}

var (
	_ gofs.NodeLookuper       = (*browseRootNode)(nil)
	_ gofs.NodeReaddirer      = (*browseRootNode)(nil)
	_ gofs.NodeOpendirHandler = (*browseRootNode)(nil)
	_ gofs.NodeGetattrer      = (*browseRootNode)(nil)
	_ gofs.NodeOnForgetter    = (*browseRootNode)(nil)
)

// ready gives the view its snapshot if it has none yet.
func (r *browseRootNode) ready(ctx context.Context) syscall.Errno {
	v := r.v
	v.mu.RLock()
	built, removed := v.snap != nil, v.removed
	v.mu.RUnlock()
	if built {
		return 0
	}
	if removed {
		return syscall.ENOENT
	}
	r.getting.Lock()
	defer r.getting.Unlock()
	v.mu.RLock()
	built = v.snap != nil
	v.mu.RUnlock()
	if built {
		return 0
	}
	done, e := v.fs.browsing.acquire(ctx)
	if e != 0 {
		return e
	}
	dctx, cancel := detach(ctx)
	snap, release, err := v.fs.opts.Snapshots.Get(dctx, r.repo, r.commit)
	cancel()
	done()
	if err != nil {
		v.fs.log.Error("gitfs: browse snapshot", "repo", r.repo, "commit", r.commit, "err", err)
		return syscall.EIO
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.removed {
		release()
		return syscall.ENOENT
	}
	v.snap, v.lease = snap, v.fs.newLease(snap, release)
	r.node.mu.Lock()
	r.node.lower.ID = snap.Root()
	r.node.mu.Unlock()
	// A root leased again after a forget (browseRoot) is registered
	// again, so that Unmount releases its lease.
	f := v.fs
	f.mu.Lock()
	if f.browse[r.key] == nil {
		f.browse[r.key] = v
	}
	f.mu.Unlock()
	return 0
}

// OnForget: the kernel forgot the root; its view drops its lease.
func (r *browseRootNode) OnForget() {
	r.node.OnForget()
	r.forget()
}

func (r *browseRootNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if e := r.ready(ctx); e != 0 {
		return nil, e
	}
	return r.node.Lookup(ctx, name, out)
}

func (r *browseRootNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	if e := r.ready(ctx); e != 0 {
		return nil, e
	}
	return r.node.Readdir(ctx)
}

func (r *browseRootNode) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if e := r.ready(ctx); e != 0 {
		return nil, 0, e
	}
	return r.node.OpendirHandle(ctx, flags)
}

func (r *browseRootNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v := r.v
	v.mu.RLock()
	built := v.snap != nil
	v.mu.RUnlock()
	if built {
		return r.node.Getattr(ctx, f, out)
	}
	unbuiltAttr(v, &out.Attr)
	return 0
}

// unbuiltAttr are the attributes of a browse root whose snapshot is not
// taken yet.
func unbuiltAttr(v *view, out *fuse.Attr) {
	dirAttr(out, v.fs.started)
	out.Uid, out.Gid = v.uid, v.gid
}
