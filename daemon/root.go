package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// rootDirs are the root's own directories; none is for users to reach.
var rootDirs = []string{"mirrors", "snapshots", "workspaces", "locks", "blobs"}

// PrepareRoot creates root, or checks it, so that a daemon may serve other
// users from it: no directory or symlink on the way to it can be changed
// by anyone but root and this process's user (else another user could
// swap a directory for a link, or point their link elsewhere, while the
// daemon works in it), the root itself is 0711 (any user reaches the
// control socket, no user lists or enters anything else), and every
// directory below it is 0700. Users see their files through the mount
// only.
func PrepareRoot(root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("root %s: %w", root, err)
	}
	euid := uint32(os.Geteuid())
	real, _, err := walkRoot(abs, euid, true)
	if err != nil {
		return err
	}
	if err := ownDir(real, 0o711, euid); err != nil {
		return err
	}
	for _, sub := range rootDirs {
		p := filepath.Join(real, sub)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("root %s: %w", real, err)
		}
		if err := ownDir(p, 0o700, euid); err != nil {
			return err
		}
	}
	return nil
}

// maxRootLinks bounds the symlinks walkRoot follows, as the kernel's
// ELOOP does (40).
const maxRootLinks = 40

// walkRoot follows abs (absolute) one component at a time, as the kernel
// resolves it, and checks everything the daemon's later uses of the path
// will go through: every directory it looks a name up in (checkAncestor),
// and every symlink it follows, which must be root's or ours (another
// user could point theirs elsewhere at any time; the directory holding it
// is checked like any other). Checking only the directories of the path
// the links lead to, as filepath.EvalSymlinks gives it, misses the links
// themselves and the directories they sit in. With create, a missing
// directory is made (0711) once its parent passed, so nothing is made
// through a path that fails; without, the walk stops at the first missing
// one. It returns the path the links lead to, and whether it exists.
func walkRoot(abs string, euid uint32, create bool) (real string, exists bool, err error) {
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
		if err := checkAncestor(dir, euid); err != nil {
			return "", false, err
		}
		p := filepath.Join(dir, name)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			if !create {
				return filepath.Join(append([]string{p}, rest...)...), false, nil
			}
			if err := os.Mkdir(p, 0o711); err != nil && !errors.Is(err, os.ErrExist) {
				return "", false, fmt.Errorf("root %s is unusable: %w (choose another with --root or GITFS_ROOT)", abs, err)
			}
			fi, err = os.Lstat(p)
		}
		if err != nil {
			return "", false, fmt.Errorf("root %s: %w", abs, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && st.Uid != euid {
				return "", false, fmt.Errorf("root: %s is a symlink of uid %d, who could point it elsewhere: choose a root whose path only root or you may change (--root or GITFS_ROOT)", p, st.Uid)
			}
			if links++; links > maxRootLinks {
				return "", false, fmt.Errorf("root %s: %w", abs, syscall.ELOOP)
			}
			target, err := os.Readlink(p)
			if err != nil {
				return "", false, fmt.Errorf("root %s: %w", abs, err)
			}
			if filepath.IsAbs(target) {
				dir = "/"
			}
			rest = append(strings.Split(target, "/"), rest...)
			continue
		}
		if !fi.IsDir() {
			return "", false, fmt.Errorf("root %s is unusable: %s is not a directory (choose another with --root or GITFS_ROOT)", abs, p)
		}
		dir = p
	}
	return dir, true, nil
}

// checkAncestor refuses a directory above the root that a user other than
// root or us could change: one they own, or one they may write that is not
// sticky (in a sticky one such as /tmp they cannot rename what is ours).
func checkAncestor(dir string, euid uint32) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("root: %s: %w", dir, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 && st.Uid != euid {
		return fmt.Errorf("root: %s belongs to uid %d, who could replace the root: choose a root whose parents belong to root or to you (--root or GITFS_ROOT)", dir, st.Uid)
	}
	if st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0 {
		return fmt.Errorf("root: %s is writable by other users (mode %04o), who could replace the root: choose another root or chmod go-w %s", dir, st.Mode&0o7777, dir)
	}
	return nil
}

// ownDir checks that dir is a directory (not a link) of ours and gives it
// mode perm.
func ownDir(dir string, perm os.FileMode, euid uint32) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("root: %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != euid {
		return fmt.Errorf("root: %s belongs to uid %d, not to this process (uid %d): choose a root of your own", dir, st.Uid, euid)
	}
	if fi.Mode().Perm() != perm || fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
		if err := os.Chmod(dir, perm); err != nil {
			return fmt.Errorf("root: %w", err)
		}
	}
	return nil
}
