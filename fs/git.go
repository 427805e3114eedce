//go:build linux

package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Every workspace is a git working tree: its root holds .git, made by
// package workspace in the upper layer (see workspace.GitDirName). Making
// it reads the whole tree (the index lists every file), so ws create does
// not wait for it: the git dir is made in the background and a lookup of
// .git waits until it is complete — git never sees half of one. Its
// directory is made at once (workspace.StartGitDir), so the root lists it
// from the start; a listing meanwhile gives it without attributes
// (lookupNoWait) rather than wait.

// gitStat is what the index must record for v's unchanged entries: what
// the mount reports for them.
func (v *view) gitStat() workspace.GitIndexStat {
	times, commit := v.times, v.snap.CommitTime()
	base := times.base
	if base.IsZero() {
		base = commit
	}
	return workspace.GitIndexStat{
		Dev:  uint32(v.fs.dev.Load()),
		Ino:  func(p string, e snapshot.Entry) uint64 { return v.lowerIno(p, e) },
		Time: func(p string) time.Time { return times.at(p, commit) },
		Base: base,
	}
}

// makeGitDir starts making w's git dir in the background, unless it is
// complete already or the file system makes none. The maker takes no view
// lock (writers would wait for it): it writes only inside .git, which no
// lookup reaches until it is done; Update waits for it before switching
// commit, and close before releasing the workspace.
func (f *FS) makeGitDir(v *view) {
	if f.opts.Git == nil {
		return
	}
	if v.ws.HasGitDir() {
		if v.ws.GitDirPending() {
			// A daemon killed after ws update returned, before the git
			// dir followed: finish it, as that update would have.
			f.updateGitDir(v)
		}
		return
	}
	if err := v.ws.StartGitDir(); err != nil {
		f.log.Error("gitfs: workspace has no git dir", "workspace", v.name, "err", err)
		return
	}
	f.startGitDirMaker(v)
}

// startGitDirMaker makes v's git dir in the background (see makeGitDir).
// Caller holds v.mu for writing, or the view is not reachable yet.
func (f *FS) startGitDirMaker(v *view) {
	ready := make(chan struct{})
	v.gitReady.Store(&ready)
	go func() {
		defer close(ready)
		src, err := f.opts.Git(v.ws.Meta().Repo)
		if err == nil {
			err = v.ws.MakeGitDir(context.Background(), src, v.gitStat())
		}
		v.setGitErr(err)
		if err != nil {
			f.log.Error("gitfs: workspace has no git dir", "workspace", v.name, "err", err)
		}
	}()
}

// setGitErr records how the last making or update of v's git dir ended,
// before its ready channel is closed.
func (v *view) setGitErr(err error) {
	if err == nil {
		v.gitErr.Store(nil)
		return
	}
	v.gitErr.Store(&err)
}

// repairGitDir is for a lookup of .git once no maker runs: when the last
// making or update of the git dir failed (a full disk, a mirror that could
// not be read), it runs it again and waits for it, and answers its error
// if it fails again. git then fails loudly until the git dir is right,
// instead of finding a git dir without an index (every file "deleted")
// or with the old commit's, and works again once the cause is gone,
// without a restart.
func (v *view) repairGitDir(ctx context.Context) syscall.Errno {
	if v.gitErr.Load() == nil {
		return 0
	}
	v.mu.Lock()
	if v.removed {
		v.mu.Unlock()
		return syscall.ENOENT
	}
	if !v.gitDirRunning() && v.gitErr.Load() != nil {
		switch {
		case !v.ws.HasGitDir():
			v.fs.startGitDirMaker(v)
		case v.ws.GitDirPending():
			v.fs.updateGitDir(v)
		default:
			v.gitErr.Store(nil)
		}
	}
	v.mu.Unlock()
	if e := v.awaitGitDir(ctx); e != 0 {
		return e
	}
	if p := v.gitErr.Load(); p != nil {
		return errnoOf(*p)
	}
	return 0
}

// awaitGitDir waits until v's git dir is complete, or the caller gives up
// (EINTR). Safe without v.mu.
func (v *view) awaitGitDir(ctx context.Context) syscall.Errno {
	ready := v.gitReady.Load()
	if ready == nil {
		return 0
	}
	select {
	case <-*ready:
		return 0
	case <-ctx.Done():
		return syscall.EINTR
	}
}

// lookupNoWait is n's Lookup for a READDIRPLUS of the workspace root: it
// declines .git while its maker runs or after it failed (the entry goes
// out bare; the LOOKUP of a user of the name waits, or repairs it), so a
// listing never waits for the git dir.
func (n *node) lookupNoWait(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if name == workspace.GitDirName && (n.v.gitDirRunning() || n.v.gitErr.Load() != nil) {
		return nil, syscall.EAGAIN
	}
	return n.Lookup(ctx, name, out)
}

// gitDirRunning reports whether a maker of v's git dir is under way.
func (v *view) gitDirRunning() bool {
	ready := v.gitReady.Load()
	if ready == nil {
		return false
	}
	select {
	case <-*ready:
		return false
	default:
		return true
	}
}

// updateGitDir moves v's git dir to the commit Update just switched v to
// (HEAD, refs, packs, index), in the background: ws update returns once
// the tree shows the new commit, and git, whose every run first looks up
// .git (Update drops the kernel's entry of it), waits in that lookup
// until this is done, so it never sees the new tree with the old index.
// It takes no view lock, as makeGitDir. Caller holds v.mu for writing, or
// the view is not reachable yet.
func (f *FS) updateGitDir(v *view) {
	ready := make(chan struct{})
	v.gitReady.Store(&ready)
	st, repo := v.gitStat(), v.ws.Meta().Repo
	go func() {
		src, err := f.opts.Git(repo)
		var changed []string
		if err == nil {
			changed, err = v.ws.UpdateGitDir(context.Background(), src, st)
		}
		v.setGitErr(err)
		if err != nil {
			f.log.Error("gitfs: workspace update not completed", "workspace", v.name, "err", err)
		}
		for _, p := range changed {
			v.journal.note(p, dirPath(p))
		}
		// Done before telling the kernel: a lookup of .git waiting for it
		// holds the workspace root's lock, which dropping an entry of .git
		// (once the kernel forgot .git itself) needs.
		close(ready)
		f.mu.Lock()
		root := v.root
		f.mu.Unlock()
		if root != nil {
			// Entries the kernel keeps below .git while something holds
			// them (an open file, a working directory there).
			f.invalidate(root, changed)
		}
	}()
}

// relPath is n's path in its workspace ("" for the root). Caller holds v.mu.
func (n *node) relPath() string {
	var parts []string
	for cur := n; cur != nil && !cur.isRoot; {
		p, name := cur.parent()
		if p == nil {
			return ""
		}
		parts = append(parts, name)
		cur = p
	}
	out := ""
	for i := len(parts) - 1; i >= 0; i-- {
		out = joinPath(out, parts[i])
	}
	return out
}

// refusePinned answers EPERM for a change to a pack that .git shares with
// the mirror and the snapshot (workspace.IsPinnedPack): writing it would
// change every workspace's and the mirror's objects. Caller holds v.mu.
func (n *node) refusePinned() syscall.Errno {
	if n.isRoot || n.v.ws == nil {
		return 0
	}
	p := n.relPath()
	if len(p) < len(workspace.GitDirName) || p[:len(workspace.GitDirName)] != workspace.GitDirName {
		return 0
	}
	pfd, name, done, e := n.loc()
	if e != 0 {
		return 0
	}
	defer done()
	st, err := workspace.Lstat(pfd, name)
	if err == nil && workspace.IsPinnedPack(p, &st) {
		return syscall.EPERM
	}
	return 0
}
