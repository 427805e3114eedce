package fs

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// upperEntry is one record of the upper layer found by walkUpper.
type upperEntry struct {
	path     string // in the workspace as seen
	dfd      int    // directory holding it (valid during the callback)
	name     string
	st       unix.Stat_t
	whiteout bool
	opaque   bool   // dirs
	redirect string // dirs: lower path shown there, if moved
	origin   string // files: lower path copied up from
}

// walkUpper calls fn for every entry of the upper layer, parents first.
// fn returns false to skip a directory's contents. Caller holds v.mu.
func (v *view) walkUpper(fn func(e *upperEntry) (bool, error)) error {
	var walk func(dfd int, dir string) error
	walk = func(dfd int, dir string) error {
		names, err := readDirNames(dfd)
		if err != nil {
			return fmt.Errorf("upper %s: %w", dir, err)
		}
		sort.Strings(names)
		for _, name := range names {
			st, err := lstatAt(dfd, name)
			if err != nil {
				return fmt.Errorf("upper %s: %w", joinPath(dir, name), err)
			}
			e := &upperEntry{path: joinPath(dir, name), dfd: dfd, name: name, st: st, whiteout: isWhiteout(&st)}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if isDir {
				_, e.opaque = getXattr(dfd, name, v.fs.xp+xOpaque)
				e.redirect, _ = getXattr(dfd, name, v.fs.xp+xRedirect)
			} else if st.Mode&unix.S_IFMT == unix.S_IFREG || st.Mode&unix.S_IFMT == unix.S_IFLNK {
				e.origin, _ = getXattr(dfd, name, v.fs.xp+xOrigin)
			}
			descend, err := fn(e)
			if err != nil {
				return err
			}
			if isDir && descend {
				fd, err := openDirAt(dfd, name)
				if err != nil {
					return fmt.Errorf("upper %s: %w", e.path, err)
				}
				err = walk(fd, e.path)
				unix.Close(fd)
				if err != nil {
					return err
				}
			}
		}
		return nil
	}
	if v.upperFd < 0 {
		return errors.New("workspace is closed")
	}
	return walk(v.upperFd, "")
}

// gitBlobID is the git object id of the upper file's content.
func gitBlobID(dfd int, name string, size int64) (snapshot.ID, error) {
	var id snapshot.ID
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return id, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", size)
	if _, err := io.Copy(h, f); err != nil {
		return id, err
	}
	copy(id[:], h.Sum(nil))
	return id, nil
}

// sameAsLower reports whether upper entry e has the content and type of
// lower entry le (a copy-up that changed nothing visible to git).
func (v *view) sameAsLower(e *upperEntry, le snapshot.Entry) bool {
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		exec := e.st.Mode&0o100 != 0
		if (le.Kind == snapshot.Executable) != exec || (le.Kind != snapshot.File && le.Kind != snapshot.Executable) {
			return false
		}
		size, err := v.snap.Size(le.ID)
		if err != nil || size != e.st.Size {
			return false
		}
		id, err := gitBlobID(e.dfd, e.name, e.st.Size)
		return err == nil && id == le.ID
	case unix.S_IFLNK:
		if le.Kind != snapshot.Symlink {
			return false
		}
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(e.dfd, e.name, buf)
		if err != nil {
			return false
		}
		target, err := v.snap.ReadLink(le.ID)
		return err == nil && target == string(buf[:n])
	}
	return false
}

// lowerFiles lists the non-directory paths under lower tree id, prefixed.
func (v *view) lowerFiles(id snapshot.ID, prefix string, out *[]string) error {
	entries, err := v.snap.Tree(id)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := joinPath(prefix, e.Name)
		if e.Kind == snapshot.Dir {
			if err := v.lowerFiles(e.ID, p, out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, p)
	}
	return nil
}

// changes computes the workspace's status. Caller holds v.mu.
func (v *view) changes() ([]Change, error) {
	var out []Change
	renamedFrom := map[string]bool{}
	deleted := map[string]bool{}
	// lowerAt returns the lower entry shown at p if the upper layer did not
	// exist (the comparison base): the commit's own entry at p.
	lowerAt := func(p string) (snapshot.Entry, bool) {
		e, err := v.snap.Lookup(p)
		return e, err == nil
	}
	var deleteTree func(p string, e snapshot.Entry) error
	deleteTree = func(p string, e snapshot.Entry) error {
		if e.Kind != snapshot.Dir {
			deleted[p] = true
			return nil
		}
		var files []string
		if err := v.lowerFiles(e.ID, p, &files); err != nil {
			return err
		}
		for _, f := range files {
			deleted[f] = true
		}
		return nil
	}
	// present records paths that exist in the upper layer (for opaque dirs).
	present := map[string]bool{}
	var opaqueDirs []string
	err := v.walkUpper(func(e *upperEntry) (bool, error) {
		le, inLower := lowerAt(e.path)
		switch {
		case e.whiteout:
			if inLower {
				return false, deleteTree(e.path, le)
			}
			return false, nil
		case e.st.Mode&unix.S_IFMT == unix.S_IFDIR:
			present[e.path] = true
			if e.redirect != "" && e.redirect != e.path {
				out = append(out, Change{Op: 'R', Path: e.path, From: e.redirect})
				renamedFrom[e.redirect] = true
				return true, nil
			}
			if e.opaque && inLower {
				opaqueDirs = append(opaqueDirs, e.path)
			}
			if inLower && le.Kind != snapshot.Dir {
				deleted[e.path] = true // a file replaced by a directory
			}
			return true, nil
		}
		present[e.path] = true
		if e.origin != "" && e.origin != e.path {
			out = append(out, Change{Op: 'R', Path: e.path, From: e.origin})
			renamedFrom[e.origin] = true
			return false, nil
		}
		if inLower && le.Kind != snapshot.Dir {
			if !v.sameAsLower(e, le) {
				out = append(out, Change{Op: 'M', Path: e.path})
			}
			return false, nil
		}
		if inLower {
			if err := deleteTree(e.path, le); err != nil { // a directory replaced by a file
				return false, err
			}
		}
		out = append(out, Change{Op: 'A', Path: e.path})
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	for _, d := range opaqueDirs {
		le, _ := lowerAt(d)
		var files []string
		if err := v.lowerFiles(le.ID, d, &files); err != nil {
			return nil, err
		}
		for _, f := range files {
			if !present[f] {
				deleted[f] = true
			}
		}
	}
	for p := range deleted {
		if renamedFrom[p] || underAny(p, renamedFrom) {
			continue
		}
		out = append(out, Change{Op: 'D', Path: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func underAny(p string, set map[string]bool) bool {
	for dir := path.Dir(p); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if set[dir] {
			return true
		}
	}
	return false
}

// ApplyChanges writes the workspace's changes (upper layer and whiteouts)
// onto dst, a materialized copy of the workspace's commit (`ws export`).
func (f *FS) ApplyChanges(name string, dst *os.Root) error {
	v, err := f.get(name)
	if err != nil {
		return err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	if err := v.applyChanges(dst); err != nil {
		return fmt.Errorf("apply changes of %s: %w", name, err)
	}
	return nil
}

func (v *view) applyChanges(dst *os.Root) error {
	// Moved directories first: take their lower content out of the way
	// before whiteouts at their old places remove it.
	type move struct{ from, tmp string }
	var moves []move
	tmpOf := map[string]string{} // redirect source -> temp name in dst
	var redirects []string
	err := v.walkUpper(func(e *upperEntry) (bool, error) {
		if e.redirect != "" && e.redirect != e.path {
			redirects = append(redirects, e.redirect)
		}
		return !e.whiteout, nil
	})
	if err != nil {
		return err
	}
	sort.Slice(redirects, func(i, j int) bool { return len(redirects[i]) < len(redirects[j]) })
	for i, src := range redirects {
		if _, done := tmpOf[src]; done {
			continue
		}
		cur := src
		for _, m := range moves { // earlier moves may have carried src along
			if strings.HasPrefix(src, m.from+"/") {
				cur = m.tmp + strings.TrimPrefix(src, m.from)
			}
		}
		tmp := ".gitfs-export-" + strconv.Itoa(i)
		if err := dst.Rename(cur, tmp); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("move %s: %w", src, err)
		}
		moves = append(moves, move{src, tmp})
		tmpOf[src] = tmp
	}
	links := map[uint64]string{}
	var dirTimes []*upperEntry
	err = v.walkUpper(func(e *upperEntry) (bool, error) {
		p := e.path
		if e.whiteout {
			return false, dst.RemoveAll(p)
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if tmp, ok := tmpOf[e.redirect]; ok && e.redirect != p {
				if err := dst.RemoveAll(p); err != nil {
					return false, err
				}
				if err := dst.Rename(tmp, p); err != nil {
					return false, err
				}
				delete(tmpOf, e.redirect)
			} else if e.opaque {
				if err := dst.RemoveAll(p); err != nil {
					return false, err
				}
				if err := dst.Mkdir(p, 0o700); err != nil {
					return false, err
				}
			} else if st, err := dst.Lstat(p); err != nil || !st.IsDir() {
				if err := dst.RemoveAll(p); err != nil {
					return false, err
				}
				if err := dst.Mkdir(p, 0o700); err != nil {
					return false, err
				}
			}
			cp := *e
			dirTimes = append(dirTimes, &cp)
			return true, nil
		}
		if err := dst.RemoveAll(p); err != nil {
			return false, err
		}
		if e.st.Nlink > 1 {
			if first, ok := links[e.st.Ino]; ok {
				return false, dst.Link(first, p)
			}
			links[e.st.Ino] = p
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			if err := copyOut(e, dst, p); err != nil {
				return false, err
			}
		case unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(e.dfd, e.name, buf)
			if err != nil {
				return false, err
			}
			if err := dst.Symlink(string(buf[:n]), p); err != nil {
				return false, err
			}
		case unix.S_IFIFO:
			parent, err := dst.Open(path.Dir(p))
			if err != nil {
				return false, err
			}
			err = unix.Mknodat(int(parent.Fd()), path.Base(p), unix.S_IFIFO|e.st.Mode&0o7777, 0)
			parent.Close()
			if err != nil {
				return false, err
			}
		}
		if v.fs.isRoot {
			dst.Lchown(p, int(e.st.Uid), int(e.st.Gid))
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	for i := len(dirTimes) - 1; i >= 0; i-- {
		e := dirTimes[i]
		if v.fs.isRoot {
			dst.Lchown(e.path, int(e.st.Uid), int(e.st.Gid))
		}
		if err := dst.Chmod(e.path, os.FileMode(e.st.Mode&0o777)|modeBits(e.st.Mode)); err != nil {
			return err
		}
	}
	for _, tmp := range tmpOf {
		dst.RemoveAll(tmp)
	}
	return nil
}

func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}

func copyOut(e *upperEntry, dst *os.Root, p string) error {
	fd, err := unix.Openat(e.dfd, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(fd), e.name)
	defer src.Close()
	out, err := dst.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Chmod(os.FileMode(e.st.Mode&0o777) | modeBits(e.st.Mode))
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	mt := unix.Timespec(e.st.Mtim)
	return dst.Chtimes(p, timeOf(unix.Timespec(e.st.Atim)), timeOf(mt))
}

// diffTrees lists the paths whose entry differs between trees a and b (a
// path whose subtree was added or removed as a whole is listed once).
func diffTrees(sa, sb *snapshot.Snapshot, a, b snapshot.ID, prefix string, out *[]string) error {
	if a == b {
		return nil
	}
	ea, err := sa.Tree(a)
	if err != nil {
		return err
	}
	eb, err := sb.Tree(b)
	if err != nil {
		return err
	}
	mb := make(map[string]snapshot.Entry, len(eb))
	for _, e := range eb {
		mb[e.Name] = e
	}
	seen := make(map[string]bool, len(ea))
	for _, x := range ea {
		seen[x.Name] = true
		p := joinPath(prefix, x.Name)
		y, ok := mb[x.Name]
		switch {
		case !ok:
			*out = append(*out, p)
		case x.Kind == snapshot.Dir && y.Kind == snapshot.Dir:
			if err := diffTrees(sa, sb, x.ID, y.ID, p, out); err != nil {
				return err
			}
		case x.Kind != y.Kind || x.ID != y.ID:
			*out = append(*out, p)
		}
	}
	for _, y := range eb {
		if !seen[y.Name] {
			*out = append(*out, joinPath(prefix, y.Name))
		}
	}
	return nil
}

func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

// localChange is a path the upper layer changes: merged directories only
// conflict when the directory itself changed or went away upstream.
type localChange struct {
	path   string
	merged bool
}

func (v *view) localChanges() ([]localChange, error) {
	var out []localChange
	err := v.walkUpper(func(e *upperEntry) (bool, error) {
		if e.st.Mode&unix.S_IFMT != unix.S_IFDIR || e.whiteout {
			out = append(out, localChange{path: e.path})
			if e.origin != "" && e.origin != e.path {
				out = append(out, localChange{path: e.origin})
			}
			return false, nil
		}
		if e.opaque {
			out = append(out, localChange{path: e.path})
			return false, nil
		}
		if e.redirect != "" && e.redirect != e.path {
			out = append(out, localChange{path: e.path}, localChange{path: e.redirect})
			return false, nil
		}
		out = append(out, localChange{path: e.path, merged: true})
		return true, nil
	})
	return out, err
}

func conflicts(changed []string, local []localChange) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range local {
		for _, c := range changed {
			hit := l.path == c || under(l.path, c)
			if !l.merged && under(c, l.path) {
				hit = true
			}
			if hit && !seen[l.path] {
				seen[l.path] = true
				out = append(out, l.path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Update switches workspace name to spec.Commit atomically. Local changes
// are kept; if one touches a path that changed between the old and the new
// commit, the update is refused (a *ConflictError naming the paths) unless
// discardChanges, which drops those local changes. Kernel caches of changed
// paths are invalidated; open file handles keep reading the old content.
func (f *FS) Update(ctx context.Context, name string, spec Spec, discardChanges bool) error {
	v, err := f.get(name)
	if err != nil {
		return err
	}
	if !mirror.IsFullSHA(spec.Commit) {
		return fmt.Errorf("update workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	v.mu.RLock()
	repo := v.meta.Repo
	v.mu.RUnlock()
	if spec.Repo != "" && spec.Repo != repo {
		return fmt.Errorf("update workspace %s: it shows %s, not %s", name, repo, spec.Repo)
	}
	newSnap, newRelease, err := f.opts.Snapshots.Get(ctx, repo, spec.Commit)
	if err != nil {
		return fmt.Errorf("update workspace %s: %w", name, err)
	}
	v.mu.Lock()
	if v.removed {
		v.mu.Unlock()
		newRelease()
		return fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	var changed []string
	if err := diffTrees(v.snap, newSnap, v.snap.Root(), newSnap.Root(), "", &changed); err != nil {
		v.mu.Unlock()
		newRelease()
		return fmt.Errorf("update workspace %s: compare commits: %w", name, err)
	}
	local, err := v.localChanges()
	if err != nil {
		v.mu.Unlock()
		newRelease()
		return fmt.Errorf("update workspace %s: %w", name, err)
	}
	bad := conflicts(changed, local)
	if len(bad) > 0 && !discardChanges {
		v.mu.Unlock()
		newRelease()
		return &ConflictError{Workspace: name, Paths: bad}
	}
	for _, p := range bad {
		if err := removeUpper(v.upperFd, p); err != nil {
			v.mu.Unlock()
			newRelease()
			return fmt.Errorf("update workspace %s: discard %s: %w", name, p, err)
		}
	}
	m := v.meta
	m.Commit = spec.Commit
	if spec.Rev != "" {
		m.Rev = spec.Rev
	}
	if spec.MergeInto != "" {
		m.MergeInto = spec.MergeInto
	}
	m.Base = spec.Base
	if err := writeMeta(v.dir, m); err != nil {
		v.mu.Unlock()
		newRelease()
		return fmt.Errorf("update workspace %s: %w", name, err)
	}
	v.pinOpenFiles()
	oldRelease := v.release
	v.meta, v.snap, v.release = m, newSnap, newRelease
	v.epoch++
	v.mu.Unlock()
	f.mu.Lock()
	root := v.root
	f.mu.Unlock()
	oldRelease()
	if root != nil {
		f.invalidate(root, append(changed, bad...))
	}
	f.log.Info("workspace updated", "workspace", name, "commit", spec.Commit, "changed_paths", len(changed), "discarded", len(bad))
	return nil
}

// removeUpper removes the upper entry at path p (and whatever is below it).
func removeUpper(upperFd int, p string) error {
	parts := strings.Split(p, "/")
	dfd := upperFd
	for _, comp := range parts[:len(parts)-1] {
		fd, err := openDirAt(dfd, comp)
		if dfd != upperFd {
			unix.Close(dfd)
		}
		if err == unix.ENOENT {
			return nil
		}
		if err != nil {
			return err
		}
		dfd = fd
	}
	err := removeAllAt(dfd, parts[len(parts)-1])
	if dfd != upperFd {
		unix.Close(dfd)
	}
	return err
}

// invalidate tells the kernel to forget what it caches for paths of the
// view rooted at root. Called without view.mu held.
func (f *FS) invalidate(root *node, paths []string) {
	f.mu.Lock()
	mounted := f.server != nil
	f.mu.Unlock()
	if !mounted {
		return
	}
	dirs := map[*gofs.Inode]bool{}
	for _, p := range paths {
		cur := root.EmbeddedInode()
		parts := strings.Split(p, "/")
		for i, comp := range parts {
			ch := cur.GetChild(comp)
			if ch == nil || i == len(parts)-1 {
				notifyEntry(cur, comp)
				dirs[cur] = true // its cached listing
				if ch != nil && ch.StableAttr().Mode != syscall.S_IFDIR {
					ch.NotifyContent(0, 0)
				}
				break
			}
			cur = ch
		}
	}
	for d := range dirs {
		d.NotifyContent(0, 0)
	}
}

func notifyEntry(dir *gofs.Inode, name string) {
	if e := dir.NotifyEntry(name); e != 0 && e != syscall.ENOENT {
		_ = e // not cached or not mounted: nothing to drop
	}
}

var _ = context.Background
