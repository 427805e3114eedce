package materialize

import "golang.org/x/sys/unix"

// The system calls the materializer uses that only Linux has, behind
// names sys_darwin.go gives macOS equivalents or refusals (so that the
// slower portable path runs there).

// oPath opens a directory only to resolve names beneath it.
const oPath = unix.O_PATH

// utimeOmit leaves a time unchanged in utimensat.
const utimeOmit = unix.UTIME_OMIT

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openBeneath opens rel beneath rootfd with openat2, the kernel refusing
// any resolution that leaves rootfd or crosses a symlink.
func openBeneath(rootfd int, rel string, flags int) (int, error) {
	return unix.Openat2(rootfd, rel, &unix.OpenHow{Flags: uint64(flags), Resolve: resolveFlags})
}

// renameNoReplace renames, refusing to replace anything (even an empty
// directory).
func renameNoReplace(fromfd int, from string, tofd int, to string) error {
	return unix.Renameat2(fromfd, from, tofd, to, unix.RENAME_NOREPLACE)
}

// futimens sets the times of the file open as fd.
func futimens(fd int, ts []unix.Timespec) error {
	return unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH)
}

// copyFileRange copies in the kernel (copy_file_range).
func copyFileRange(src int, off *int64, dst int, n int) (int, error) {
	return unix.CopyFileRange(src, off, dst, nil, n, 0)
}
