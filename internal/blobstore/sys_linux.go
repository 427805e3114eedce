package blobstore

import (
	"strconv"

	"golang.org/x/sys/unix"
)

const utimeOmit = unix.UTIME_OMIT

// touch records a use of the blob open as fd (its atime, see the package doc).
func touch(fd int) { unix.UtimesNanoAt(fd, "", atimeNow(), unix.AT_EMPTY_PATH) }

func touchPath(p string) { unix.UtimesNanoAt(unix.AT_FDCWD, p, atimeNow(), 0) }

// sharesBlocks tells whether a file in dir can share blocks with one in
// the store: it clones a page-sized temporary file of the store into a
// temporary file of dirfd (both O_TMPFILE: nothing is left behind, even
// on a crash). mkTarget runs the target's creation (with the caller's
// credentials when a daemon writes for one).
func (s *Store) sharesBlocks(dirfd int, mkTarget func(func() error) error) bool {
	src, err := unix.Open(s.tmp, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer unix.Close(src)
	if _, err := unix.Pwrite(src, make([]byte, 4096), 0); err != nil {
		return false
	}
	dst := -1
	if err := mkTarget(func() (err error) {
		dst, err = unix.Openat(dirfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		return err
	}); err != nil {
		return false
	}
	defer unix.Close(dst)
	return unix.IoctlFileClone(dst, src) == nil
}

func recordSize(fd int, size int64) {
	unix.Fsetxattr(fd, sizeXattr, []byte(strconv.FormatInt(size, 10)), 0)
}

func recordedSize(path string) (int64, bool) {
	var buf [24]byte
	n, err := unix.Getxattr(path, sizeXattr, buf[:])
	return parseSize(buf[:], n, err)
}

// recordedSizeFD is recordedSize of the blob open as fd.
func recordedSizeFD(fd int) (int64, bool) {
	var buf [24]byte
	n, err := unix.Fgetxattr(fd, sizeXattr, buf[:])
	return parseSize(buf[:], n, err)
}

func parseSize(buf []byte, n int, err error) (int64, bool) {
	if err != nil || n <= 0 {
		return 0, false
	}
	size, err := strconv.ParseInt(string(buf[:n]), 10, 64)
	return size, err == nil && size >= 0
}
