//go:build linux

package workspace

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"

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

// walkUpper calls fn for every entry of the upper layer but the git dir,
// parents first, in name order. fn returns false to skip a directory's
// contents.
func (w *Workspace) walkUpper(fn func(e *upperEntry) (bool, error)) error {
	l := w.layer
	var walk func(dfd int, dir string) error
	walk = func(dfd int, dir string) error {
		names, err := ReadDirNames(dfd)
		if err != nil {
			return fmt.Errorf("upper %s: %w", dir, err)
		}
		sort.Strings(names)
		for _, name := range names {
			if dir == "" && name == GitDirName {
				continue // the git dir is never a change
			}
			st, err := Lstat(dfd, name)
			if err != nil {
				return fmt.Errorf("upper %s: %w", join(dir, name), err)
			}
			e := &upperEntry{path: join(dir, name), dfd: dfd, name: name, st: st, whiteout: IsWhiteout(&st)}
			isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
			if isDir {
				e.opaque = l.Opaque(dfd, name)
				e.redirect, _ = l.Redirect(dfd, name)
			} else if st.Mode&unix.S_IFMT == unix.S_IFREG || st.Mode&unix.S_IFMT == unix.S_IFLNK {
				e.origin, _ = l.Origin(dfd, name)
			}
			descend, err := fn(e)
			if err != nil {
				return err
			}
			if isDir && descend {
				fd, err := OpenDir(dfd, name)
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
	if l.upper < 0 {
		return errors.New("workspace is closed")
	}
	return walk(l.upper, "")
}

// join joins a slash-separated directory path and a name ("" is the root).
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
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
func (w *Workspace) sameAsLower(e *upperEntry, le snapshot.Entry) bool {
	switch e.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		exec := e.st.Mode&0o100 != 0
		if (le.Kind == snapshot.Executable) != exec || (le.Kind != snapshot.File && le.Kind != snapshot.Executable) {
			return false
		}
		size, err := w.snap.SizeAt(e.path, le)
		if err != nil || size != e.st.Size {
			return false
		}
		if conv, err := w.snap.Conversion(e.path, le); err != nil || !conv.None() {
			// A converted file: compare with what checkout writes.
			return err == nil && sameBytes(w.snap, e, le)
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
		target, err := w.snap.ReadLink(le.ID)
		return err == nil && target == string(buf[:n])
	}
	return false
}

// sameBytes reports whether the upper file e holds exactly what checkout
// writes for le at its path.
func sameBytes(snap *snapshot.Snapshot, e *upperEntry, le snapshot.Entry) bool {
	b, err := snap.OpenAt(e.path, le)
	if err != nil {
		return false
	}
	defer b.Close()
	want := make([]byte, b.Size())
	if _, err := b.ReadAt(want, 0); err != nil && err != io.EOF {
		return false
	}
	fd, err := unix.Openat(e.dfd, e.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	f := os.NewFile(uintptr(fd), e.name)
	defer f.Close()
	got, err := io.ReadAll(io.LimitReader(f, int64(len(want))+1))
	return err == nil && string(got) == string(want)
}

// lowerFiles lists the non-directory paths under lower tree id, prefixed.
func (w *Workspace) lowerFiles(id snapshot.ID, prefix string, out *[]string) error {
	entries, err := w.snap.Tree(id)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := join(prefix, e.Name)
		if e.Kind == snapshot.Dir {
			if err := w.lowerFiles(e.ID, p, out); err != nil {
				return err
			}
			continue
		}
		*out = append(*out, p)
	}
	return nil
}

// Status lists the workspace's changes against its commit, sorted by path.
func (w *Workspace) Status() ([]Change, error) {
	out, err := w.status()
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", w.meta.Name, err)
	}
	return out, nil
}

func (w *Workspace) status() ([]Change, error) {
	var out []Change
	renamedFrom := map[string]bool{}
	deleted := map[string]bool{}
	// lowerAt returns the lower entry shown at p if the upper layer did not
	// exist (the comparison base): the commit's own entry at p.
	lowerAt := func(p string) (snapshot.Entry, bool) {
		e, err := w.snap.Lookup(p)
		return e, err == nil
	}
	deleteTree := func(p string, e snapshot.Entry) error {
		if e.Kind != snapshot.Dir {
			deleted[p] = true
			return nil
		}
		var files []string
		if err := w.lowerFiles(e.ID, p, &files); err != nil {
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
	err := w.walkUpper(func(e *upperEntry) (bool, error) {
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
			if !w.sameAsLower(e, le) {
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
		if err := w.lowerFiles(le.ID, d, &files); err != nil {
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
