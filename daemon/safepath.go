package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A path the daemon keeps using by name (its root, its mount point) must
// be one no other user can redirect: the daemon, often root, would go on
// working wherever they pointed it. pathRule names such a path in errors.
type pathRule struct {
	what string // "root", "mountpoint"
	flag string // how to choose another
}

var (
	rootPath  = pathRule{"root", "--root or GITFS_ROOT"}
	mountPath = pathRule{"mountpoint", "--mountpoint"}
)

// maxPathLinks bounds the symlinks walk follows, as the kernel's ELOOP
// does (40).
const maxPathLinks = 40

// walk follows abs (absolute) one component at a time, as the kernel
// resolves it, and checks everything the daemon's later uses of the path
// will go through: every directory it looks a name up in (checkDir), and
// every symlink it follows, which must be root's or ours (another user
// could point theirs elsewhere at any time; the directory holding it is
// checked like any other). Checking only the directories of the path the
// links lead to, as filepath.EvalSymlinks gives it, misses the links
// themselves and the directories they sit in. With a non-zero mkdir mode,
// a missing directory is made with it once its parent passed, so nothing
// is made through a path that fails; with 0, the walk stops at the first
// missing one. The last component may be a dead FUSE mount (ENOTCONN):
// the caller heals it. It returns the path the links lead to, and whether
// it exists.
func (r pathRule) walk(abs string, euid uint32, mkdir os.FileMode) (real string, exists bool, err error) {
	dir := "/"
	rest := strings.Split(abs, "/")
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			dir = filepath.Dir(dir) // dir holds no link: ".." is lexical
			continue
		}
		if err := r.checkDir(dir, euid); err != nil {
			return "", false, err
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			if mkdir == 0 {
				return filepath.Join(append([]string{p}, rest...)...), false, nil
			}
			if err := os.Mkdir(p, mkdir); err != nil && !errors.Is(err, os.ErrExist) {
				return "", false, fmt.Errorf("%s %s is unusable: %w (choose another with %s)", r.what, abs, err, r.flag)
			}
			fi, err = os.Lstat(p)
		}
		if errors.Is(err, syscall.ENOTCONN) && allDots(rest) {
			return p, true, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("%s %s: %w", r.what, abs, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != euid {
				return "", false, fmt.Errorf("%s: %s is a symlink of uid %d, who could point it elsewhere: choose a %s whose path only root or you may change (%s)", r.what, p, st.Uid, r.what, r.flag)
			}
			if links++; links > maxPathLinks {
				return "", false, fmt.Errorf("%s %s: %w", r.what, abs, syscall.ELOOP)
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", false, fmt.Errorf("%s %s: %w", r.what, abs, err)
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if !fi.IsDir() {
			return "", false, fmt.Errorf("%s %s is unusable: %s is not a directory (choose another with %s)", r.what, abs, p, r.flag)
		}
		dir = p
	}
	return dir, true, nil
}

// allDots reports whether what is left of a path names nothing more.
func allDots(rest []string) bool {
	for _, n := range rest {
		if n != "" && n != "." {
			return false
		}
	}
	return true
}

// checkDir refuses a directory on the way to the path that a user other
// than root or us could change: one they own, or one they may write that
// is not sticky (in a sticky one such as /tmp they cannot rename what is
// ours).
func (r pathRule) checkDir(dir string, euid uint32) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", r.what, dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 && st.Uid != euid {
		return fmt.Errorf("%s: %s belongs to uid %d, who could replace the %s: choose a %s whose parents belong to root or to you (%s)", r.what, dir, st.Uid, r.what, r.what, r.flag)
	}
	if st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0 {
		return fmt.Errorf("%s: %s is writable by other users (mode %04o), who could replace the %s: choose another %s or chmod go-w %s", r.what, dir, st.Mode&0o7777, r.what, r.what, dir)
	}
	return nil
}
