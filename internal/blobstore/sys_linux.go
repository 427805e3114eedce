package blobstore

import "golang.org/x/sys/unix"

const utimeOmit = unix.UTIME_OMIT

// touch records a use of the blob open as fd (its atime, see the package doc).
func touch(fd int) { unix.UtimesNanoAt(fd, "", atimeNow(), unix.AT_EMPTY_PATH) }

func touchPath(p string) { unix.UtimesNanoAt(unix.AT_FDCWD, p, atimeNow(), 0) }
