package locks

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TempMarker separates a target's name from the unique suffix of a
// directory being built for it: "<target>.gitfs-tmp-<pid>-<random>".
const TempMarker = ".gitfs-tmp-"

// TempDir creates a new, uniquely named, empty directory beside target, in
// which the caller builds what it will later Publish. The name carries the
// creating process's pid so that CleanStale can tell a dead builder's
// leftovers from a live one's.
func TempDir(target string) (string, error) {
	dir, err := tempName(target)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("temp dir for %s: %w", target, err)
	}
	return dir, nil
}

// tempName is a new unique temp name for target (a path or a single
// name): "<target>.gitfs-tmp-<pid>-<random>".
func tempName(target string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("temp name for %s: %w", target, err)
	}
	return target + TempMarker + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:]), nil
}

// ErrPublishedByOther reports that another builder published target first;
// the caller's temp dir has been removed and the winner's copy is in place.
var ErrPublishedByOther = errors.New("published by another builder")

// Publish makes the finished directory tmp visible as target with one
// rename(2), after syncing it. If target already exists, another builder
// won: tmp is removed and ErrPublishedByOther returned, so the caller uses
// the winner's copy instead of its own.
func Publish(tmp, target string) error {
	if err := syncDir(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("publish %s: %w", target, err)
	}
	// RENAME_NOREPLACE refuses to replace anything, including an empty
	// directory, which plain rename(2) would silently do.
	err := renameNoReplace(tmp, target)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: fall back to rename, which
		// fails on a non-empty target.
		if _, statErr := os.Lstat(target); statErr == nil {
			err = unix.EEXIST
		} else {
			err = os.Rename(tmp, target)
		}
	}
	if err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			os.RemoveAll(tmp)
			return ErrPublishedByOther
		}
		os.RemoveAll(tmp)
		return fmt.Errorf("publish %s: %w", target, err)
	}
	if err := syncPath(filepath.Dir(target)); err != nil {
		return fmt.Errorf("publish %s: sync parent: %w", target, err)
	}
	return nil
}

// syncDir fsyncs every regular file and directory under dir, so that a
// published tree survives a power loss as a whole.
func syncDir(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&os.ModeSymlink != 0 {
			return nil
		}
		return syncPath(path)
	})
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// CleanStale removes temp dirs beside target whose creating process is no
// longer alive. It is safe to call at any time: a live builder's temp dir is
// never touched.
func CleanStale(target string) {
	parent, base := filepath.Split(target)
	fd, err := unix.Open(filepath.Clean(parent), oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	CleanStaleAt(fd, base)
}

// isStale reports whether name, found beside target, is a temp dir of
// target's whose builder is gone: its pid is unparsable or names a dead
// process. This process's own temp dirs belong to concurrent builders in
// it and are never stale.
func isStale(target, name string) bool {
	rest, ok := strings.CutPrefix(name, target+TempMarker)
	if !ok {
		return false
	}
	pidStr, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return true
	}
	return pid != os.Getpid() && !processAlive(pid)
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
