//go:build linux

package fs

import (
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/workspace"
)

// Entries whose meaning can change without the kernel being told (refs that
// a fetch moves, repositories added) are given a ~zero entry timeout, so
// they are resolved again on every lookup. The trees below them are
// immutable and cached for long.
const volatile = time.Nanosecond

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
		return f.browseRoot(ctx, &r.Inode, r.repo, "HEAD", commit, out)
	case "heads", "tags":
		dirAttr(&out.Attr, f.started)
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

func (d *refDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	f := d.fs
	out.SetEntryTimeout(volatile)
	full := d.prefix + name
	commit, e := f.resolve(ctx, d.repo, "refs/"+d.kind+"/"+full)
	if e == 0 {
		return f.browseRoot(ctx, &d.Inode, d.repo, d.kind+"/"+full, commit, out)
	}
	if e != syscall.ENOENT {
		return nil, e
	}
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

func (d *commitsDir) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	out.SetEntryTimeout(volatile)
	if !workspace.IsCommitID(name) {
		return nil, syscall.ENOENT
	}
	commit, e := d.fs.resolve(ctx, d.repo, name)
	if e != 0 {
		return nil, e
	}
	if commit != name {
		return nil, syscall.ENOENT
	}
	ch, e := d.fs.browseRoot(ctx, &d.Inode, d.repo, "commits/"+name, commit, out)
	if e == 0 {
		out.SetEntryTimeout(0) // immutable: the long default
	}
	return ch, e
}

// detach keeps a request's values but not its cancellation: the kernel
// interrupts requests whenever the caller gets a signal (Go programs get
// SIGURG all the time), and a half-done resolve must not turn into ENOENT.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
}

// resolve resolves rev in repo: ENOENT if it names nothing, EIO (logged)
// if resolving failed.
func (f *FS) resolve(ctx context.Context, repo, rev string) (string, syscall.Errno) {
	dctx, cancel := detach(ctx)
	defer cancel()
	commit, err := f.opts.Resolver.Resolve(dctx, repo, rev)
	if err == nil {
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
// working directories keep the old. The view leases its snapshot until the
// kernel forgets its root.
func (f *FS) browseRoot(ctx context.Context, parent *gofs.Inode, repo, key, commit string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	k := repo + "\x00" + key + "\x00" + commit
	f.mu.Lock()
	v := f.browse[k]
	f.mu.Unlock()
	if v == nil {
		dctx, cancel := detach(ctx)
		snap, release, err := f.opts.Snapshots.Get(dctx, repo, commit)
		cancel()
		if err != nil {
			f.log.Error("gitfs: browse snapshot", "repo", repo, "commit", commit, "err", err)
			return nil, syscall.EIO
		}
		nv := &view{fs: f, id: hashIno(0, "browse", k), name: "@" + repo + "/" + key, readonly: true,
			snap: snap, release: release}
		nv.root = nv.newRoot()
		nv.root.onForget = func() {
			f.mu.Lock()
			if f.browse[k] == nv {
				delete(f.browse, k)
			}
			f.mu.Unlock()
			nv.close()
		}
		f.mu.Lock()
		if v = f.browse[k]; v == nil {
			f.browse[k] = nv
			v = nv
		}
		f.mu.Unlock()
		if v != nv {
			release()
		}
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, syscall.ENOENT
	}
	if e := v.root.getattr(&out.Attr); e != 0 {
		return nil, e
	}
	// NewInode returns the existing Inode once the node has one; f.mu
	// makes the first initialisation happen once.
	f.mu.Lock()
	defer f.mu.Unlock()
	return parent.NewInode(ctx, v.root, gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: hashIno(v.id, "root")}), 0
}
