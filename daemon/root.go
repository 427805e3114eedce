package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	real, _, err := rootPath.walk(abs, euid, 0o711)
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
