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
	"time"

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

// ExportPlan is what `ws export` writes on top of a checkout of Commit to
// make it the workspace: a list of steps, each holding what it needs from
// the upper layer (a descriptor of a file to copy, a link's target). It is
// made under the workspace's lock with the daemon's own credentials, and
// applied later without the lock: nothing is written while the lock is
// held (a target on a file system that waits for this one could deadlock
// it), and the applying thread may run as the exporting user, who need
// not be able to reach the daemon's directories.
type ExportPlan struct {
	Commit string // the commit the changes apply to
	steps  []func(dst *os.Root) error
	fds    []int // upper files the steps copy from
}

// PlanExport records workspace name's changes against its commit. Close
// the plan when done.
func (f *FS) PlanExport(name string) (*ExportPlan, error) {
	v, err := f.get(name)
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, fmt.Errorf("workspace %q: %w", name, ErrNotFound)
	}
	plan := &ExportPlan{Commit: v.meta.Commit}
	if err := v.planExport(plan); err != nil {
		plan.Close()
		return nil, fmt.Errorf("changes of %s: %w", name, err)
	}
	return plan, nil
}

func (p *ExportPlan) add(step func(dst *os.Root) error) { p.steps = append(p.steps, step) }

// Apply writes the changes onto dst, a checkout of p.Commit. Entries are
// created with the calling thread's credentials and never chowned: they
// belong to whoever writes them.
func (p *ExportPlan) Apply(dst *os.Root) error {
	for _, step := range p.steps {
		if err := step(dst); err != nil {
			return fmt.Errorf("apply changes: %w", err)
		}
	}
	return nil
}

// Close releases the plan's descriptors.
func (p *ExportPlan) Close() {
	for _, fd := range p.fds {
		unix.Close(fd)
	}
	p.fds = nil
}

// planExport records the steps that turn the commit into the workspace.
// Caller holds v.mu.
func (v *view) planExport(plan *ExportPlan) error {
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
	moved := map[string]*bool{} // whether the move of a source happened (known when applied)
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
		ok := new(bool)
		moved[src] = ok
		plan.add(func(dst *os.Root) error {
			if err := dst.Rename(cur, tmp); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil
				}
				return fmt.Errorf("move %s: %w", src, err)
			}
			*ok = true
			return nil
		})
		moves = append(moves, move{src, tmp})
		tmpOf[src] = tmp
	}
	links := map[uint64]string{}
	var dirModes []func(dst *os.Root) error
	err = v.walkUpper(func(e *upperEntry) (bool, error) {
		p := e.path
		if e.whiteout {
			plan.add(func(dst *os.Root) error { return dst.RemoveAll(p) })
			return false, nil
		}
		mode := os.FileMode(e.st.Mode&0o777) | modeBits(e.st.Mode)
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if tmp, ok := tmpOf[e.redirect]; ok && e.redirect != p {
				done, opaque := moved[e.redirect], e.opaque
				plan.add(func(dst *os.Root) error {
					if !*done { // nothing was at the source to move
						if st, err := dst.Lstat(p); err == nil && st.IsDir() && !opaque {
							return nil
						}
						return replaceDir(dst, p)
					}
					if err := dst.RemoveAll(p); err != nil {
						return err
					}
					return dst.Rename(tmp, p)
				})
				delete(tmpOf, e.redirect)
			} else if e.opaque {
				plan.add(func(dst *os.Root) error {
					if err := dst.RemoveAll(p); err != nil {
						return err
					}
					return dst.Mkdir(p, 0o700)
				})
			} else {
				plan.add(func(dst *os.Root) error {
					if st, err := dst.Lstat(p); err == nil && st.IsDir() {
						return nil
					}
					return replaceDir(dst, p)
				})
			}
			// Modes last, deepest first: a directory made read-only must
			// not stop what goes into it.
			dirModes = append(dirModes, func(dst *os.Root) error { return dst.Chmod(p, mode) })
			return true, nil
		}
		if e.st.Nlink > 1 {
			if first, ok := links[e.st.Ino]; ok {
				plan.add(func(dst *os.Root) error {
					if err := dst.RemoveAll(p); err != nil {
						return err
					}
					return dst.Link(first, p)
				})
				return false, nil
			}
			links[e.st.Ino] = p
		}
		switch e.st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fd, err := unix.Openat(e.dfd, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return false, fmt.Errorf("%s: %w", p, err)
			}
			plan.fds = append(plan.fds, fd)
			atime, mtime := timeOf(unix.Timespec(e.st.Atim)), timeOf(unix.Timespec(e.st.Mtim))
			plan.add(func(dst *os.Root) error {
				if err := dst.RemoveAll(p); err != nil {
					return err
				}
				return copyOut(fd, dst, p, mode, atime, mtime)
			})
		case unix.S_IFLNK:
			buf := make([]byte, 4096)
			n, err := unix.Readlinkat(e.dfd, e.name, buf)
			if err != nil {
				return false, fmt.Errorf("%s: %w", p, err)
			}
			target := string(buf[:n])
			plan.add(func(dst *os.Root) error {
				if err := dst.RemoveAll(p); err != nil {
					return err
				}
				return dst.Symlink(target, p)
			})
		case unix.S_IFIFO:
			perm := e.st.Mode & 0o7777
			plan.add(func(dst *os.Root) error {
				if err := dst.RemoveAll(p); err != nil {
					return err
				}
				parent, err := dst.Open(path.Dir(p))
				if err != nil {
					return err
				}
				defer parent.Close()
				return unix.Mknodat(int(parent.Fd()), path.Base(p), unix.S_IFIFO|perm, 0)
			})
		default:
			plan.add(func(dst *os.Root) error { return dst.RemoveAll(p) })
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	for i := len(dirModes) - 1; i >= 0; i-- {
		plan.add(dirModes[i])
	}
	for _, tmp := range tmpOf {
		plan.add(func(dst *os.Root) error { return dst.RemoveAll(tmp) })
	}
	return nil
}

// replaceDir makes p an empty directory, whatever was there.
func replaceDir(dst *os.Root, p string) error {
	if err := dst.RemoveAll(p); err != nil {
		return err
	}
	return dst.Mkdir(p, 0o700)
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

// copyOut writes the upper file open as fd to p in dst with its mode and
// times. The new file is created 0600 and gets its mode (setuid bits
// included) only once complete, by its owner: the exporting user.
func copyOut(fd int, dst *os.Root, p string, mode os.FileMode, atime, mtime time.Time) error {
	src := io.NewSectionReader(fdReader(fd), 0, 1<<62)
	out, err := dst.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Chmod(mode)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return dst.Chtimes(p, atime, mtime)
}

// fdReader reads a descriptor with pread, leaving its offset alone.
type fdReader int

func (f fdReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := unix.Pread(int(f), b, off)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
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
