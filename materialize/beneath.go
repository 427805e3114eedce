package materialize

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Every path the materializer touches is resolved relative to the temp
// root's descriptor, never by joining strings into host paths: with
// openat2's RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS the kernel itself refuses
// any resolution that would leave the root or cross a symlink, whatever
// the tree contains. Where openat2 is missing (old kernels, seccomp
// filters answering ENOSYS or EPERM), the same guarantee comes from
// opening one already-validated component at a time with O_NOFOLLOW.

// noOpenat2 is set once openat2 has been found unusable.
var noOpenat2 atomic.Bool

// openDir opens the directory at rel (slash-separated validated
// components, "" for the root itself) beneath rootfd, as an O_PATH
// descriptor fit for the *at calls.
func openDir(rootfd int, rel string) (int, error) {
	if rel == "" {
		return unix.Openat(rootfd, ".", oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if !noOpenat2.Load() {
		fd, err := openBeneath(rootfd, rel, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC) // sys_linux.go
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return -1, err
		}
		noOpenat2.Store(true)
	}
	return openDirSlow(rootfd, rel)
}

// openDirSlow walks rel one component at a time, refusing symlinks at
// every step (O_NOFOLLOW with O_PATH opens a symlink itself, which
// O_DIRECTORY then rejects).
func openDirSlow(rootfd int, rel string) (int, error) {
	cur, err := unix.Openat(rootfd, ".", oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for _, c := range pathComponents(rel) {
		if c == "" || c == "." || c == ".." {
			unix.Close(cur)
			return -1, fmt.Errorf("component %q: %w", c, unix.EINVAL)
		}
		next, err := unix.Openat(cur, c, oPath|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(cur)
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}
