//go:build linux

package workspace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gitdir"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

// The workspace's git dir. Every workspace is a git working tree: its root
// holds .git, a directory of the upper layer that the workspace's user
// reads and writes through the mount like any other (so git's own writes
// — index, refs, new objects — are the user's changes, with the user's
// permissions, and survive a daemon crash like any change). gitfs writes
// what a clone would have: a detached HEAD at the workspace's commit, the
// mirror's branches as refs/remotes/origin/* and its tags, the remote's
// URL, and an index whose stat data is exactly what the mount reports for
// every unchanged file, so that `git status` reads no blob. Objects come
// from packs hard-linked into .git/objects/pack: the snapshot's and the
// mirror's at the time (the latter hold every object the refs need), which
// no fetch or gc of the mirror can take away. Those links share their
// inodes with the mirror and the snapshot: the file system refuses to
// write them (see IsPinnedPack).
//
// .git is never a change: status, export and update skip it.

// GitDirName is the workspace's git dir, in its root.
const GitDirName = ".git"

// GitRef is one branch or tag of the repository.
type GitRef = gitdir.Ref

// GitSource is what a workspace's git dir is made from: the repository's
// remote and refs (the daemon implements it over the mirror; this package
// opens no mirror).
type GitSource interface {
	// URL is the repository's remote URL (remote.origin.url).
	URL(ctx context.Context) (string, error)
	// Refs lists the branches (refs/heads/*) and tags (refs/tags/*), and
	// the branch HEAD names ("" if none).
	Refs(ctx context.Context) (refs []GitRef, head string, err error)
	// PinPacks hard-links into dir packs holding every object the refs
	// name, and returns their base names (pack-<sha>).
	PinPacks(ctx context.Context, dir string) ([]string, error)
	// FSMonitor is the command git runs to learn what changed (its
	// fsmonitor hook, protocol 2), or "" for none.
	FSMonitor() string
}

// StatOf gives what the mount reports for an unchanged entry at path: the
// index must hold exactly that for git to trust it.
type StatOf func(path string, e snapshot.Entry) (ino uint64)

// GitIndexStat is what the index records of unchanged entries besides
// what the snapshot knows.
type GitIndexStat struct {
	Dev  uint32 // st_dev of the mount
	Ino  StatOf
	Time func(path string) time.Time // the mtime the mount shows; nil: the commit's time
	// Base is what Time gives every path that no update changed. An
	// index kept in memory (indexMemo) lends its unchanged subtrees to
	// the next only if that was written with the same Base.
	Base time.Time
}

// HasGitDir reports whether the workspace's git dir is complete: its
// index written (the last step of making it), or HEAD moved by the user
// (whose git dir it then is: gitfs writes no index for another commit).
func (w *Workspace) HasGitDir() bool {
	fd, err := OpenDir(w.layer.upper, GitDirName)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	head, err := readFileAt(fd, "HEAD")
	if err != nil {
		return false
	}
	if _, err := Lstat(fd, "index"); err == nil {
		return true
	}
	return strings.TrimSpace(string(head)) != w.meta.Commit
}

// MakeGitDir writes the workspace's git dir: the skeleton, config, HEAD,
// refs, pinned packs and, last, the index (its presence marks the git dir
// complete). It may take a while for a large tree; the caller keeps users
// from looking at .git meanwhile. A git dir that a crash left incomplete
// is completed.
func (w *Workspace) MakeGitDir(ctx context.Context, src GitSource, st GitIndexStat) error {
	if err := w.makeGitDir(ctx, src, st); err != nil {
		return fmt.Errorf("workspace %s: git dir: %w", w.meta.Name, err)
	}
	w.gitDirDone()
	return nil
}

// StartGitDir makes the git dir's empty directory, at once, for
// MakeGitDir to fill later: the root then lists .git and keeps its times
// and link count from the moment the workspace appears. Were .git made by
// the background maker, a listing taken meanwhile would lack it (and the
// kernel keeps listings), and tar would find the root changed under it.
func (w *Workspace) StartGitDir() error {
	if err := w.layer.mkdirOwned(w.layer.upper, GitDirName, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("workspace %s: git dir: %w", w.meta.Name, err)
	}
	return nil
}

// gitDirPendingName, in the workspace's directory, marks a git dir that
// has not followed the workspace's last Switch yet. Switch makes it before
// it writes meta.json (whose directory sync makes both durable); making or
// updating the git dir removes it. A daemon killed between the two (ws
// update returns before the git dir follows) finds it at the next start
// and finishes the git dir (GitDirPending).
const gitDirPendingName = "gitdir-pending"

// GitDirPending reports whether the git dir has yet to follow the last
// Switch (UpdateGitDir).
func (w *Workspace) GitDirPending() bool {
	_, err := os.Lstat(filepath.Join(w.dir, gitDirPendingName))
	return err == nil
}

// gitDirDone removes the pending mark, if any.
func (w *Workspace) gitDirDone() {
	os.Remove(filepath.Join(w.dir, gitDirPendingName))
}

func (w *Workspace) makeGitDir(ctx context.Context, src GitSource, st GitIndexStat) error {
	l := w.layer
	url, err := src.URL(ctx)
	if err != nil {
		return err
	}
	refs, head, err := src.Refs(ctx)
	if err != nil {
		return err
	}
	if err := l.mkdirOwned(l.upper, GitDirName, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	gfd, err := OpenDir(l.upper, GitDirName)
	if err != nil {
		return err
	}
	defer unix.Close(gfd)
	if _, err := readFileAt(gfd, "HEAD"); err == nil {
		// A crash cut the making short after HEAD: only packs and index
		// are missing. Config and refs may be the user's by now.
		if _, err := w.pinPacks(ctx, gfd, src); err != nil {
			return err
		}
		return w.writeIndex(gfd, st, false)
	}
	for _, d := range []string{"objects", "objects/info", "objects/pack", "refs", "refs/heads", "refs/tags", "refs/remotes", "refs/remotes/origin", "info", "logs"} {
		if err := l.mkdirAt(gfd, d); err != nil {
			return err
		}
	}
	files := map[string]string{
		"config":       gitdir.Config(url, gitdir.Speedups{FSMonitor: src.FSMonitor(), UntrackedCache: true}),
		"description":  "A gitfs workspace: objects come from the packs in objects/pack, shared with the snapshot and the mirror.\n",
		"info/exclude": "# git ls-files --others --exclude-from=.git/info/exclude\n",
	}
	for name, content := range files {
		if err := l.writeFileAt(gfd, name, []byte(content)); err != nil {
			return err
		}
	}
	if err := w.writeRefs(gfd, refs, head, true); err != nil {
		return err
	}
	if _, err := w.pinPacks(ctx, gfd, src); err != nil {
		return err
	}
	return w.writeIndex(gfd, st, false)
}

// UpdateGitDir moves the git dir to the workspace's current commit after a
// Switch: HEAD, refs as the mirror has them now, packs for them, and an
// index of the new commit (paths with local changes keep the new commit's
// entry: their changes show as unstaged, as after git checkout -m). It
// returns the paths in the workspace it replaced, for the caller to drop
// from the kernel's caches.
func (w *Workspace) UpdateGitDir(ctx context.Context, src GitSource, st GitIndexStat) ([]string, error) {
	// After the switch's record: a crash in between must find the
	// pending mark with the new record, or the old record with the old
	// git dir.
	saveErr := w.saving.wait()
	gfd, err := OpenDir(w.layer.upper, GitDirName)
	if errors.Is(err, unix.ENOENT) {
		if err := w.makeGitDir(ctx, src, st); err != nil {
			return nil, fmt.Errorf("workspace %s: git dir: %w", w.meta.Name, err)
		}
		if saveErr == nil {
			w.gitDirDone()
		}
		return []string{GitDirName}, w.lateSaveErr()
	}
	if err != nil {
		return nil, fmt.Errorf("workspace %s: git dir: %w", w.meta.Name, err)
	}
	defer unix.Close(gfd)
	changed := []string{".git/HEAD", ".git/packed-refs", ".git/refs/remotes/origin/HEAD", ".git/index"}
	err = func() error {
		refs, head, err := src.Refs(ctx)
		if err != nil {
			return err
		}
		packs, err := w.pinPacks(ctx, gfd, src)
		if err != nil {
			return err
		}
		for _, p := range packs {
			changed = append(changed, ".git/objects/pack/"+p)
		}
		if err := w.writeRefs(gfd, refs, head, false); err != nil {
			return err
		}
		return w.writeIndex(gfd, st, true)
	}()
	if err != nil {
		return nil, fmt.Errorf("workspace %s: git dir: %w", w.meta.Name, err)
	}
	if saveErr != nil {
		// The record on disk is the old commit's: a restart makes its
		// git dir again.
		return changed, w.lateSaveErr()
	}
	w.gitDirDone()
	return changed, nil
}

// lateSaveErr is the last record's failure if it came after its bytes
// were written, which Switched.Saved could not report.
func (w *Workspace) lateSaveErr() error {
	if late := w.saving.lateErr(); late != nil {
		return fmt.Errorf("workspace %s: its record could not be saved (after a restart it would show the commit before; update it again once this is fixed): %w", w.meta.Name, late)
	}
	return nil
}

// writeRefs writes HEAD (detached at the workspace's commit), the mirror's
// branches as origin's and its tags into packed-refs, and origin/HEAD, as
// a fetch into a clone would: the user's own refs (local branches, tags
// they made, anything git packed) are kept, loose origin refs that would
// shadow the new ones are dropped, and a tag the user already has is not
// replaced. A new git dir also gets the local branch a clone checks out
// (origin's HEAD branch, tracking it).
func (w *Workspace) writeRefs(gfd int, refs []GitRef, head string, fresh bool) error {
	l := w.layer
	old, oldErr := readFileAt(gfd, "packed-refs")
	packed, branch := gitdir.PackedRefs(old, refs, head, fresh)
	// A file whose content stays is left alone: replacing one costs a
	// rename over it (2.7 ms each here, four per ws update), and between
	// updates the mirror's refs mostly stay.
	if oldErr != nil || !bytes.Equal(old, packed) {
		if err := l.writeFileAt(gfd, "packed-refs", packed); err != nil {
			return err
		}
	}
	if branch != "" {
		cfg, err := readFileAt(gfd, "config")
		if err != nil {
			return err
		}
		if err := l.writeFileAt(gfd, "config", append(cfg, branch...)); err != nil {
			return err
		}
	}
	// Loose origin refs (a git fetch in the workspace) would shadow the
	// packed ones just written.
	if ofd, err := openDirPath(gfd, "refs/remotes/origin"); err == nil {
		if names, err := ReadDirNames(ofd); err == nil {
			for _, n := range names {
				if n != "HEAD" {
					locks.RemoveAllAt(ofd, n)
				}
			}
		}
		unix.Close(ofd)
	}
	if target := gitdir.OriginHEAD(head); target != "" {
		if cur, err := readFileAt(gfd, "refs/remotes/origin/HEAD"); err != nil || string(cur) != target {
			if err := l.writeFileAt(gfd, "refs/remotes/origin/HEAD", []byte(target)); err != nil {
				return err
			}
		}
	}
	if err := w.logHEAD(gfd, head); err != nil {
		return err
	}
	return l.writeFileAt(gfd, "HEAD", []byte(w.meta.Commit+"\n"))
}

// logHEAD records the move of HEAD in its reflog as `git checkout` would
// ("checkout: moving from A to B"): git status reads it to say "HEAD
// detached at B", as in a clone that checked the commit out.
func (w *Workspace) logHEAD(gfd int, head string) error {
	oldID, from := "", strings.TrimPrefix(head, "refs/heads/")
	if prev, err := readFileAt(gfd, "HEAD"); err == nil && IsCommitID(strings.TrimSpace(string(prev))) {
		oldID = strings.TrimSpace(string(prev))
		from = oldID
	}
	if oldID == w.meta.Commit {
		return nil
	}
	log, _ := readFileAt(gfd, "logs/HEAD")
	entry := gitdir.HeadLogEntry(oldID, from, w.meta.Commit, time.Now())
	return w.layer.writeFileAt(gfd, "logs/HEAD", append(log, entry...))
}

// readFileAt reads the slash-separated file p below gfd, never following
// a link; at most 16 MiB.
func readFileAt(gfd int, p string) ([]byte, error) { return readFileAtMost(gfd, p, 16<<20) }

// readFileAtMost is readFileAt reading at most limit bytes.
func readFileAtMost(gfd int, p string, limit int64) ([]byte, error) {
	dir, name := splitLast(p)
	dfd := gfd
	if dir != "" {
		fd, err := openDirPath(gfd, dir)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		dfd = fd
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// pinPacks links packs for every object the refs and the commit need into
// .git/objects/pack: the source's and, if the workspace's own repository
// built the snapshot, the snapshot's (the commit's objects even if no ref
// reaches it any more). A snapshot another repository built holds that
// repository's packs, every object of it (snapshots are kept by commit
// alone, and a commit two repositories share has one): linking them would
// give this workspace's user a repository they may not read. The source's
// packs then hold the commit, since its mirror resolved it. It returns the
// file names it added.
func (w *Workspace) pinPacks(ctx context.Context, gfd int, src GitSource) ([]string, error) {
	l := w.layer
	tmp := tmpName()
	if err := unix.Mkdirat(l.work, tmp, 0o700); err != nil {
		return nil, err
	}
	defer locks.RemoveAllAt(l.work, tmp)
	// A host path, for git's own processes; work/ is the daemon's, out of
	// users' reach.
	if _, err := src.PinPacks(ctx, filepath.Join(w.dir, "work", tmp)); err != nil {
		return nil, err
	}
	pfd, err := openDirPath(gfd, "objects/pack")
	if err != nil {
		return nil, err
	}
	defer unix.Close(pfd)
	from := []string{filepath.Join(w.dir, "work", tmp)}
	if w.snap.BuiltFrom(w.meta.Repo) {
		from = append(from, filepath.Join(w.snap.ObjectsDir(), "pack"))
	}
	var added []string
	for _, from := range from {
		sfd, err := unix.Open(from, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		names, err := ReadDirNames(sfd)
		if err != nil {
			unix.Close(sfd)
			return nil, err
		}
		// Packs before their indexes: an index without its pack would be a lie.
		sort.Slice(names, func(i, j int) bool {
			return strings.HasSuffix(names[i], ".pack") && !strings.HasSuffix(names[j], ".pack")
		})
		for _, n := range names {
			if !strings.HasPrefix(n, "pack-") || !(strings.HasSuffix(n, ".pack") || strings.HasSuffix(n, ".idx")) {
				continue
			}
			err := unix.Linkat(sfd, n, pfd, n, 0)
			if err == nil {
				added = append(added, n)
			} else if !errors.Is(err, unix.EEXIST) {
				unix.Close(sfd)
				return nil, fmt.Errorf("pin %s: %w", n, err)
			}
		}
		unix.Close(sfd)
	}
	return added, nil
}

// IsPinnedPack reports whether a file of the upper layer is a pack or
// index shared with the mirror or a snapshot (a hard link in
// .git/objects/pack): writing it would change them too.
func IsPinnedPack(path string, st *unix.Stat_t) bool {
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink < 2 {
		return false
	}
	dir, name, ok := strings.Cut(path, "/objects/pack/")
	return ok && dir == GitDirName && !strings.Contains(name, "/") &&
		strings.HasPrefix(name, "pack-") && (strings.HasSuffix(name, ".pack") || strings.HasSuffix(name, ".idx"))
}

// writeIndex writes .git/index for the workspace's commit: every file,
// symlink and gitlink with the stat data the mount reports for it, and the
// cache tree (every directory's tree id, known from the snapshot).
func (w *Workspace) writeIndex(gfd int, st GitIndexStat, keep bool) error {
	snap := w.snap
	ctime := snap.CommitTime()
	base := st.Base
	if st.Time == nil {
		base = ctime
	}
	// An unchanged path's entry in the index being replaced gives its size
	// and inode number when everything else we would record agrees (the
	// same blob, mode, time and owner), which spares asking the
	// snapshot for them (a 20k-file index: 28 -> 20 ms of CPU, pprof over
	// five ws updates). Anything that disagrees, a user's staged change
	// included, is made afresh. When the index is the one this process
	// wrote last (memo), a directory whose tree is the same and in which
	// no path changed since is taken whole, without walking it.
	prev, memo := w.previousIndex(gfd, base)
	idx := make([]gitdir.IndexEntry, 0, len(prev)+16)
	// previous finds prefix/name among the previous entries (sorted, as
	// the walk is), without making the path.
	previous := func(prefix, name string) (gitdir.IndexEntry, bool) {
		for len(prev) > 0 && pathBefore(prev[0].Path, prefix, name) {
			prev = prev[1:]
		}
		if len(prev) == 0 || !pathIs(prev[0].Path, prefix, name) {
			return gitdir.IndexEntry{}, false
		}
		return prev[0], true
	}
	// whole takes the entries of directory dir from the memo, if its
	// subtree mt (n entries) is still what they list.
	whole := func(dir string, mt *gitdir.CacheTree) bool {
		for len(prev) > 0 && pathBefore(prev[0].Path, dir, "") {
			prev = prev[1:]
		}
		n := mt.Entries
		if n <= 0 || len(prev) < n || !under(prev[0].Path, dir) || !under(prev[n-1].Path, dir) ||
			(len(prev) > n && under(prev[n].Path, dir)) {
			return false
		}
		start := len(idx)
		idx = append(idx, prev[:n]...)
		if memo.dev != st.Dev {
			for i := start; i < len(idx); i++ {
				idx[i].Dev = st.Dev
			}
		}
		prev = prev[n:]
		return true
	}
	// The device is not compared but set: it is the mount's, another after
	// a daemon restart, and neither size nor inode number depends on it.
	reuse := func(o *gitdir.IndexEntry, id snapshot.ID, mode uint32, t time.Time) bool {
		if o.ID != id || o.Mode != mode || o.UID != w.meta.UID || o.GID != w.meta.GID || !o.Mtime.Equal(t) || !o.Ctime.Equal(t) {
			return false
		}
		o.Dev = st.Dev
		return true
	}
	// walk adds the entries below tree and returns its cache-tree node;
	// mt is the memo's node for the same directory, if any.
	var walk func(tree snapshot.ID, name, prefix string, mt *gitdir.CacheTree) (*gitdir.CacheTree, error)
	walk = func(tree snapshot.ID, name, prefix string, mt *gitdir.CacheTree) (*gitdir.CacheTree, error) {
		entries, err := snap.Tree(tree)
		if err != nil {
			return nil, err
		}
		ct := &gitdir.CacheTree{Name: name, ID: tree}
		memoNext := 0 // mt's subtrees are in the walk's order
		for _, e := range entries {
			var mode uint32
			switch e.Kind {
			case snapshot.Dir:
				p := join(prefix, e.Name)
				var msub *gitdir.CacheTree
				if mt != nil {
					for i := memoNext; i < len(mt.Subtrees); i++ {
						if mt.Subtrees[i].Name == e.Name {
							msub, memoNext = mt.Subtrees[i], i+1
							break
						}
					}
				}
				if msub != nil && msub.ID == e.ID && !memo.stale[p] && whole(p, msub) {
					ct.Subtrees = append(ct.Subtrees, msub) // immutable once written
					ct.Entries += msub.Entries
					continue
				}
				sub, err := walk(e.ID, e.Name, p, msub)
				if err != nil {
					return nil, err
				}
				ct.Subtrees = append(ct.Subtrees, sub)
				ct.Entries += sub.Entries
				continue
			case snapshot.Gitlink:
				idx = append(idx, gitdir.IndexEntry{Path: join(prefix, e.Name), ID: e.ID, Mode: gitdir.ModeGitlink})
				ct.Entries++
				continue
			case snapshot.Executable:
				mode = gitdir.ModeExecutable
			case snapshot.Symlink:
				mode = gitdir.ModeSymlink
			default:
				mode = gitdir.ModeRegular
			}
			o, had := previous(prefix, e.Name)
			p := o.Path // the previous entry's string, when there is one
			if !had {
				p = join(prefix, e.Name)
			}
			t := ctime
			if st.Time != nil {
				t = st.Time(p)
			}
			if t.Unix() < 0 {
				t = time.Time{} // what an index can record (EncodeIndex)
			}
			if had && reuse(&o, e.ID, mode, t) {
				idx = append(idx, o)
				ct.Entries++
				continue
			}
			size, err := snap.SizeAt(p, e) // the working-tree file's, as the mount reports it
			if err != nil {
				return nil, fmt.Errorf("size of %s: %w", p, err)
			}
			var ino uint64
			if st.Ino != nil {
				ino = st.Ino(p, e)
			}
			idx = append(idx, gitdir.IndexEntry{
				Path: p, ID: e.ID, Mode: mode, Ctime: t, Mtime: t,
				Dev: st.Dev, Ino: uint32(ino), UID: w.meta.UID, GID: w.meta.GID, Size: uint32(size),
			})
			ct.Entries++
		}
		return ct, nil
	}
	var memoRoot *gitdir.CacheTree
	if memo != nil {
		memoRoot = memo.tree
	}
	tree, err := walk(snap.Root(), "", "", memoRoot)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	// With the cache tree, git compares HEAD with the index by tree ids
	// (git status reads no tree object of an unchanged directory).
	data, err := gitdir.EncodeIndex(idx, tree)
	if err != nil {
		return err
	}
	w.index = nil
	if err := w.layer.writeFileAt(gfd, "index", data); err != nil {
		return err
	}
	w.attrsMoved = false // the index on disk has every size afresh
	if keep {
		w.index = &indexMemo{entries: idx, tree: tree, size: int64(len(data)), uid: w.meta.UID, gid: w.meta.GID, dev: st.Dev, base: base}
		copy(w.index.sum[:], data[len(data)-len(w.index.sum):])
	}
	return nil
}

// indexMemo is the index this process last wrote for a workspace that ws
// update moves (a slot moves job after job), kept so that the next update
// takes every directory in which nothing changed whole: neither the file
// is read again nor those trees walked (a 20k-file tree with 1% changed:
// see BenchmarkWriteIndex). It is used only while the file on disk is
// still what it recorded (size and checksum: git may have rewritten it)
// and was written with the same owner and the same Base.
type indexMemo struct {
	entries  []gitdir.IndexEntry
	tree     *gitdir.CacheTree
	size     int64
	sum      [20]byte // the file's trailing checksum
	uid, gid uint32
	dev      uint32
	base     time.Time
	stale    map[string]bool // directories in which a path changed since (Switch)
}

// touch records that paths changed (their directories are stale).
func (m *indexMemo) touch(paths []string) {
	if m.stale == nil {
		m.stale = map[string]bool{}
	}
	for _, p := range paths {
		for dir := p; ; {
			i := strings.LastIndexByte(dir, '/')
			if i < 0 {
				break
			}
			dir = dir[:i]
			if m.stale[dir] {
				break // and so is every directory above
			}
			m.stale[dir] = true
		}
		m.stale[p] = true // p itself, if a directory
	}
}

// onDisk reports whether the index in gfd is still the one m records.
func (m *indexMemo) onDisk(gfd int) bool {
	fd, err := unix.Openat(gfd, "index", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var fst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG || fst.Size != m.size {
		return false
	}
	var sum [20]byte
	n, err := unix.Pread(fd, sum[:], m.size-int64(len(sum)))
	return err == nil && n == len(sum) && sum == m.sum
}

// pathIs reports whether p is prefix/name (name alone at the top).
func pathIs(p, prefix, name string) bool {
	if prefix == "" {
		return p == name
	}
	return len(p) == len(prefix)+1+len(name) && p[len(prefix)] == '/' &&
		strings.HasPrefix(p, prefix) && strings.HasSuffix(p, name)
}

// pathBefore reports whether p sorts before prefix/name, byte-wise as
// the index sorts, without making prefix/name.
func pathBefore(p, prefix, name string) bool {
	if prefix == "" {
		return p < name
	}
	// Compare p with prefix, then '/', then name.
	n := min(len(p), len(prefix))
	if c := strings.Compare(p[:n], prefix[:n]); c != 0 {
		return c < 0
	}
	if len(p) < len(prefix) {
		return true // p is a proper prefix of prefix
	}
	rest := p[len(prefix):]
	if rest == "" {
		return true
	}
	if rest[0] != '/' {
		return rest[0] < '/'
	}
	return rest[1:] < name
}

// previousIndex is the entries of the workspace's current index, if it
// can be reused for the next (writeIndex), else nil; and the memo they
// come from, if the index is the one this process wrote last and lends
// its unchanged subtrees (base: what the next index's unchanged paths
// record as their time).
func (w *Workspace) previousIndex(gfd int, base time.Time) ([]gitdir.IndexEntry, *indexMemo) {
	if w.attrsMoved {
		return nil, nil
	}
	if m := w.index; m != nil && m.onDisk(gfd) {
		if m.uid == w.meta.UID && m.gid == w.meta.GID && m.base.Equal(base) {
			return m.entries, m
		}
		return m.entries, nil
	}
	data, err := readFileAtMost(gfd, "index", maxIndex)
	if err != nil || len(data) >= maxIndex {
		return nil, nil
	}
	prev, err := gitdir.ReadIndex(data)
	if err != nil {
		return nil, nil
	}
	return prev, nil
}

// maxIndex bounds the index read for reuse: the user may have made it
// anything. An index of a million paths is about 100 MB.
const maxIndex = 256 << 20

// mkdirOwned makes directory name in dfd, owned by the workspace's owner.
func (l *Layer) mkdirOwned(dfd int, name string, perm uint32) error {
	if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
		return err
	}
	l.Own(dfd, name, l.uid, l.gid)
	return ChmodAt(dfd, name, perm)
}

// mkdirAt makes the slash-separated directory p below gfd if missing.
func (l *Layer) mkdirAt(gfd int, p string) error {
	dir, name := splitLast(p)
	dfd := gfd
	if dir != "" {
		fd, err := openDirPath(gfd, dir)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dfd = fd
	}
	if err := l.mkdirOwned(dfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	return nil
}

// writeFileAt replaces the slash-separated file p below gfd with data,
// owned by the workspace's owner, the way git itself does: written as
// p.lock (created exclusively: a git running in the workspace holds it,
// and then this fails rather than racing it) and renamed over p. The user
// may have made p anything (a link, a directory): the rename replaces a
// file or link and never follows one.
func (l *Layer) writeFileAt(gfd int, p string, data []byte) error {
	dir, name := splitLast(p)
	dfd := gfd
	if dir != "" {
		fd, err := openDirPath(gfd, dir)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		dfd = fd
	}
	lock := name + ".lock"
	fd, err := unix.Openat(dfd, lock, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s.lock exists: a git command is running in the workspace (or one died: remove it)", p)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), lock)
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fchmod(fd, 0o644)
	}
	if err == nil {
		err = l.OwnFD(fd, l.uid, l.gid)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, lock, dfd, name)
	}
	if err != nil {
		unix.Unlinkat(dfd, lock, 0)
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

// openDirPath opens the slash-separated directory p below dfd, one
// component at a time, never following a link.
func openDirPath(dfd int, p string) (int, error) {
	cur, err := OpenDir(dfd, ".")
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(p, "/") {
		next, err := OpenDir(cur, c)
		unix.Close(cur)
		if err != nil {
			return -1, fmt.Errorf("%s: %w", p, err)
		}
		cur = next
	}
	return cur, nil
}

func splitLast(p string) (dir, name string) {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return "", p
}
