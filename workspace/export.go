//go:build linux

package workspace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ExportPlan is what `ws export` writes on top of a checkout of Commit to
// make it the workspace: a list of steps, each holding what it needs from
// the upper layer (a descriptor of a file to copy, a link's target). It is
// made while the caller keeps the workspace from changing, with the
// daemon's own credentials, and applied later: nothing need be written
// while changes are held off (a target on a file system that waits for
// this one could deadlock it), and the applying thread may run as the
// exporting user, who need not be able to reach the daemon's directories.
type ExportPlan struct {
	Commit string // the commit the changes apply to
	steps  []func(dst *os.Root) error
	fds    []int // upper files the steps copy from
}

// PlanExport records the workspace's changes against its commit. Close
// the plan when done.
func (w *Workspace) PlanExport() (*ExportPlan, error) {
	plan := &ExportPlan{Commit: w.meta.Commit}
	if err := w.planExport(plan); err != nil {
		plan.Close()
		return nil, fmt.Errorf("changes of %s: %w", w.meta.Name, err)
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
func (w *Workspace) planExport(plan *ExportPlan) error {
	// Moved directories first: take their lower content out of the way
	// before whiteouts at their old places remove it.
	type move struct{ from, tmp string }
	var moves []move
	tmpOf := map[string]string{} // redirect source -> temp name in dst
	var redirects []string
	err := w.walkUpper(func(e *upperEntry) (bool, error) {
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
	err = w.walkUpper(func(e *upperEntry) (bool, error) {
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
