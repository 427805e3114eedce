package materialize

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// macOS equivalents of sys_linux.go's calls, or refusals that make the
// portable path run.

// oPath: no O_PATH on macOS; a read-only directory descriptor serves.
const oPath = unix.O_RDONLY

// utimeOmit is macOS's UTIME_OMIT.
const utimeOmit = -2

// openBeneath: no openat2 on macOS. ENOSYS makes openDir walk one
// component at a time with O_NOFOLLOW instead (the same guarantee).
func openBeneath(int, string, int) (int, error) { return -1, unix.ENOSYS }

// renameNoReplace is renameatx_np's RENAME_EXCL.
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	return unix.RenameatxNp(fromfd, from, tofd, to, unix.RENAME_EXCL)
}

// futimens sets the times of the file open as fd, through /dev/fd.
func futimens(fd int, ts []unix.Timespec) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, "/dev/fd/"+strconv.Itoa(fd), ts, 0)
}

// copyFileRange: none on macOS; ENOSYS makes copyRange read and write.
func copyFileRange(int, *int64, int, int) (int, error) { return 0, unix.ENOSYS }
