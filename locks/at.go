package locks

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// The *At variants name the target as one path element inside a directory
// the caller holds open, and resolve everything relative to that
// descriptor: no host path is ever resolved, so no component of one can
// be swapped for a symlink meanwhile. The gitfs daemon writes into
// directories its callers opened (and, with internal/asuser, as those
// callers), where a path it resolved itself could lead anywhere.

// checkElem refuses anything but a single path element.
func checkElem(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("%q is not a single path element: give a plain name", name)
	}
	return nil
}

// TempDirAt is TempDir for the target named target inside the directory
// open as dirfd (an O_PATH or O_RDONLY directory descriptor). It returns
// the temp dir's name, also inside dirfd.
func TempDirAt(dirfd int, target string) (string, error) {
	if err := checkElem(target); err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	name, err := tempName(target)
	if err != nil {
		return "", err
	}
	if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
		return "", fmt.Errorf("temp dir for %s: %w", target, err)
	}
	return name, nil
}

// CleanStaleAt is CleanStale for the target named target inside the
// directory open as dirfd. Failures are ignored, as in CleanStale: what
// cannot be removed now is tried again by the next builder.
func CleanStaleAt(dirfd int, target string) {
	if checkElem(target) != nil {
		return
	}
	names, err := readNames(dirfd, ".")
	if err != nil {
		return
	}
	for _, name := range names {
		if isStale(target, name) {
			RemoveAllAt(dirfd, name)
		}
	}
}

// RemoveAllAt removes name inside the directory open as dirfd and, if it
// is a directory, everything below it. It never follows a symlink: a link
// is removed, not its target. A missing name is not an error.
func RemoveAllAt(dirfd int, name string) error {
	if err := checkElem(name); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	if err := removeAllAt(dirfd, name); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

func removeAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	// Linux answers EISDIR for a directory; some file systems EPERM.
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	unlinkErr := err
	names, err := readNames(dirfd, name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.ENOTDIR) {
		return unlinkErr // not a directory after all: unlinkat's answer stands
	}
	if err != nil {
		return err
	}
	if len(names) > 0 {
		fd, err := unix.Openat(dirfd, name, oPath|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var errs []error
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", name, n, err))
			}
		}
		unix.Close(fd)
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// readNames lists the directory name inside dirfd ("." for dirfd itself),
// refusing to follow a symlink. Every name is read before any is removed:
// removing while reading can make getdents skip entries.
func readNames(dirfd int, name string) ([]string, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if name != "." {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err != nil {
		return nil, err
	}
	// os.File reads the directory with getdents (getdirentries on macOS),
	// retrying EINTR, and closes fd.
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	return names, nil
}
