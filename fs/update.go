//go:build linux

package fs

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/gitfs/gitfs/workspace"
)

// Update switches workspace name to spec.Commit atomically. Local changes
// are kept; if one touches a path that changed between the old and the new
// commit, the update is refused (a *workspace.ConflictError naming the
// paths) unless discard says to drop them (workspace.Discard). Kernel
// caches of changed paths are invalidated; open file handles keep reading
// the old content.
func (f *FS) Update(ctx context.Context, name string, spec workspace.Spec, discard workspace.Discard) error {
	v, err := f.get(name)
	if err != nil {
		return err
	}
	if !workspace.IsCommitID(spec.Commit) {
		return fmt.Errorf("update workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	v.mu.RLock()
	repo := v.ws.Meta().Repo
	v.mu.RUnlock()
	newSnap, newRelease, err := f.opts.Snapshots.Get(ctx, repo, spec.Commit)
	if err != nil {
		return fmt.Errorf("update workspace %s: %w", name, err)
	}
	// The git dir's maker reads the workspace without a lock: switch only
	// once none runs, with mu held (another update may have started one
	// between the wait and the lock).
	for {
		if e := v.awaitGitDir(ctx); e != 0 {
			newRelease()
			return fmt.Errorf("update workspace %s: %w", name, ctx.Err())
		}
		v.mu.Lock()
		if !v.gitDirRunning() {
			break
		}
		v.mu.Unlock()
	}
	if v.removed {
		v.mu.Unlock()
		newRelease()
		return fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	if discard != workspace.KeepChanges {
		v.holdUpperFiles(false) // file.go
	}
	sw, err := v.ws.Switch(spec, newSnap, newRelease, discard)
	changed := sw.Changed
	if err != nil {
		v.mu.Unlock()
		newRelease()
		return err
	}
	// Open handles of the old commit keep what they read from.
	v.pinOpenFiles()
	v.times.note(sw.Changed, v.ws.Meta().Updated)
	v.snap = newSnap
	v.epoch++
	v.reissue(sw.Discarded) // a descriptor held open keeps the change's inode
	if discard != workspace.KeepChanges {
		v.refreshUpperNodes() // after reissue: a discarded file's node keeps its own
	}
	for _, p := range changed {
		v.journal.note(p, dirPath(p)) // a file, or everything below a directory
	}
	v.journal.note(sw.Dirs...)
	git := f.opts.Git != nil
	if git {
		f.updateGitDir(v) // git.go
	}
	v.mu.Unlock()
	f.mu.Lock()
	root := v.root
	f.mu.Unlock()
	sw.Release()
	if root != nil {
		f.invalidate(root, changed)
		f.invalidateAttrs(root, sw.Dirs)
		f.invalidateConverted(root, changed)
		if git {
			root.NotifyEntry(workspace.GitDirName) // the next lookup waits for the git dir
		}
	}
	if err := sw.Saved(); err != nil {
		return err
	}
	f.log.Info("workspace updated", "workspace", name, "commit", spec.Commit, "changed_paths", len(changed))
	return nil
}

// invalidateConverted drops what the kernel caches of every file below
// each directory whose .gitattributes changed: unchanged blobs there keep
// their inodes but may now convert to other bytes and sizes (a fresh
// checkout of the new commit writes them so; the daemon serves them so).
// Called without view.mu held, as invalidate.
func (f *FS) invalidateConverted(root *node, changed []string) {
	for _, p := range changed {
		dir, name := splitPath(p)
		if name != ".gitattributes" {
			continue
		}
		cur := root.EmbeddedInode()
		if dir != "" {
			for _, comp := range strings.Split(dir, "/") {
				if cur = cur.GetChild(comp); cur == nil {
					break // not cached: nothing to drop
				}
			}
		}
		if cur != nil {
			notifyFilesBelow(cur, dir == "")
		}
	}
}

// notifyFilesBelow drops the cached pages and attributes of every file
// inode the kernel knows below d (but the git dir, if d is the
// workspace's root: no rule converts its files).
func notifyFilesBelow(d *gofs.Inode, top bool) {
	for name, ch := range d.Children() {
		if top && name == workspace.GitDirName {
			continue
		}
		if ch.StableAttr().Mode == syscall.S_IFDIR {
			notifyFilesBelow(ch, false)
		} else {
			ch.NotifyContent(0, 0)
		}
	}
}

// invalidateAttrs tells the kernel to forget the attributes it caches of
// the directories at paths, and nothing else: their entries stand. Called
// without view.mu held, as invalidate.
func (f *FS) invalidateAttrs(root *node, paths []string) {
	for _, p := range paths {
		cur := root.EmbeddedInode()
		for _, comp := range strings.Split(p, "/") {
			if cur = cur.GetChild(comp); cur == nil {
				break // not cached: nothing to drop
			}
		}
		if cur != nil {
			cur.NotifyContent(-1, 0) // a negative offset: attributes only
		}
	}
}

// invalidate tells the kernel to forget what it caches for paths of the
// view rooted at root. Called without view.mu held: the kernel may wait
// for a request that waits for it.
//
// Dropping a cached entry also drops its directory's attributes and
// cached listing (the kernel does so for the entry's directory), so a
// directory is told to drop its own cache only when none of its entries
// was cached: one notification per changed path instead of two. A file's
// own pages stay: what a path now shows has a new inode number (a changed
// lower file's includes its blob, a discarded change's lower file is
// reissued one), and the old inode's pages are the old bytes, which a
// descriptor opened before the update still reads.
func (f *FS) invalidate(root *node, paths []string) {
	f.mu.Lock()
	mounted := f.server != nil
	f.mu.Unlock()
	if !mounted {
		return
	}
	uncached := map[*gofs.Inode]bool{} // directory told -> none of its entries was cached
	for _, p := range paths {
		cur := root.EmbeddedInode()
		parts := strings.Split(p, "/")
		for i, comp := range parts {
			ch := cur.GetChild(comp)
			if ch == nil || i == len(parts)-1 {
				// ENOENT: the kernel had not cached it; nothing to drop.
				cached := cur.NotifyEntry(comp) == 0
				if u, ok := uncached[cur]; !ok || u {
					uncached[cur] = !cached
				}
				break
			}
			cur = ch
		}
	}
	for d, u := range uncached {
		if u {
			d.NotifyContent(0, 0) // its cached listing
		}
	}
}

// refreshUpperNodes runs after a switch that discarded local changes
// (caller holds v.mu for writing): every node the kernel knows that had
// an upper part learns what its name shows now, and a directory drops
// its descriptor of the upper directory, which the discard removed. A
// directory that had changes but none in the trees being switched kept
// its old state otherwise: it went on writing into the removed directory,
// and every create or write in it failed with ENOENT (ws update --reset of
// a slot, then a build). A node whose name is gone or shows another
// inode is left as it is: the kernel is told to drop its entry (changed).
func (v *view) refreshUpperNodes() {
	if v.root == nil {
		return
	}
	v.root.dropDirFd()
	var walk func(d *node)
	walk = func(d *node) {
		for name, ch := range d.Children() {
			cn, ok := ch.Operations().(*node)
			if !ok || cn.v != v || (d == v.root && name == workspace.GitDirName) {
				continue
			}
			cn.mu.Lock()
			upper := cn.upper
			cn.mu.Unlock()
			if !upper {
				continue
			}
			if ci, e := d.lookupChild(name); e == 0 && ci.ino == ch.StableAttr().Ino {
				cn.setState(&ci, v.epoch)
			}
			if kindIsDir(cn) {
				cn.dropDirFd()
				walk(cn)
			}
		}
	}
	walk(v.root)
}
