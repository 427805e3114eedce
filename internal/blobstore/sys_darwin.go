package blobstore

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// utimeOmit is macOS's UTIME_OMIT.
const utimeOmit = -2

// touch records a use of the blob open as fd, through /dev/fd (no
// AT_EMPTY_PATH on macOS).
func touch(fd int) { unix.UtimesNanoAt(unix.AT_FDCWD, "/dev/fd/"+strconv.Itoa(fd), atimeNow(), 0) }

func touchPath(p string) { unix.UtimesNanoAt(unix.AT_FDCWD, p, atimeNow(), 0) }

// sharesBlocks keeps the copy from the store on macOS, whose APFS clones
// files (clonefile) on every volume that holds both.
func (s *Store) sharesBlocks(dirfd int, mkTarget func(func() error) error) bool { return true }

// recordSize records nothing on macOS: sizes come from the packs there.
func recordSize(fd int, size int64) {}

func recordedSize(path string) (int64, bool) { return 0, false }

func recordedSizeFD(fd int) (int64, bool) { return 0, false }
