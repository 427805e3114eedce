package fs

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Upper-layer records. An upper directory mirrors the workspace's changed
// paths; besides ordinary files it holds:
//   - whiteouts: character devices 0/0 (as overlayfs), hiding a lower entry;
//   - xattr PREFIX+"opaque" on a directory: nothing of the lower layer shows
//     through it (a directory removed and recreated, or made by mkdir);
//   - xattr PREFIX+"redirect" on a directory: its lower layer is the lower
//     directory at that path (a renamed lower or merged directory);
//   - xattr PREFIX+"ino": the inode number the entry had before copy-up,
//     so that numbers never change for the life of a workspace;
//   - xattr PREFIX+"origin": the lower path a copied-up file came from
//     (for status: M or R).
//
// PREFIX is "trusted.gitfs." when the daemon runs as root (works on every
// file type, and users of the mount cannot forge it), "user.gitfs." otherwise.
const (
	xOpaque   = "opaque"
	xRedirect = "redirect"
	xIno      = "ino"
	xOrigin   = "origin"
)

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func lstatAt(dfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// procPath names the entry name in the directory open as dfd without a long
// host path: the xattr calls have no *at variants.
func procPath(dfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name
}

func openDirAt(dfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// getXattr reads attribute attr of the entry name in dfd ("" for dfd itself).
func getXattr(dfd int, name, attr string) (string, bool) {
	buf := make([]byte, 4096)
	var n int
	var err error
	if name == "" {
		n, err = unix.Fgetxattr(dfd, attr, buf)
	} else {
		n, err = unix.Lgetxattr(procPath(dfd, name), attr, buf)
	}
	if err != nil || n <= 0 {
		return "", false
	}
	return string(buf[:n]), true
}

func setXattr(dfd int, name, attr, value string) error {
	if name == "" {
		return unix.Fsetxattr(dfd, attr, []byte(value), 0)
	}
	return unix.Lsetxattr(procPath(dfd, name), attr, []byte(value), 0)
}

// chmodAt sets the mode of the entry name in dfd itself, never of what it
// would point to if it were a symlink: fchmodat2 with AT_SYMLINK_NOFOLLOW
// (Linux >= 6.6), else through an O_PATH descriptor of the entry opened
// without following links, refusing a link. Every name the daemon touches
// for a caller is treated as one that could have been swapped for a link.
func chmodAt(dfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.EOPNOTSUPP // symlinks have no mode of their own
	}
	// The magic link names exactly the inode opened above.
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// hashIno derives a stable inode number from a namespace id and parts.
func hashIno(id uint64, parts ...string) uint64 {
	h := sha256.New()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], id)
	h.Write(b[:])
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)
	v := binary.LittleEndian.Uint64(sum[:8])
	// 0 and 1 (root) and ^0 (go-fuse's poll hack) are reserved.
	if v <= 1 || v == ^uint64(0) {
		v = 2 + v&0xffff
	}
	return v
}

func statToAttr(st *unix.Stat_t, out *fuse.Attr) {
	out.Ino = st.Ino
	out.Size = uint64(st.Size)
	out.Blocks = uint64(st.Blocks)
	out.Atime = uint64(st.Atim.Sec)
	out.Atimensec = uint32(st.Atim.Nsec)
	out.Mtime = uint64(st.Mtim.Sec)
	out.Mtimensec = uint32(st.Mtim.Nsec)
	out.Ctime = uint64(st.Ctim.Sec)
	out.Ctimensec = uint32(st.Ctim.Nsec)
	out.Mode = st.Mode
	out.Nlink = uint32(st.Nlink)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A merged directory's entries are not all in the upper directory:
		// report 1 ("unknown", as btrfs does) so that no tool counts
		// subdirectories by link count.
		out.Nlink = 1
	}
	out.Uid = st.Uid
	out.Gid = st.Gid
	out.Rdev = uint32(st.Rdev)
	out.Blksize = uint32(st.Blksize)
}

func setTimes(out *fuse.Attr, t time.Time) {
	s, ns := uint64(t.Unix()), uint32(t.Nanosecond())
	out.Atime, out.Atimensec = s, ns
	out.Mtime, out.Mtimensec = s, ns
	out.Ctime, out.Ctimensec = s, ns
}

// errno turns an error from a system call into an errno for the kernel.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, os.ErrNotExist) {
		return syscall.ENOENT
	}
	return syscall.EIO
}

// tmpCounter makes names in a workspace's work directory unique within the
// process; the work directory is emptied when a workspace is loaded.
var tmpCounter atomic.Uint64

func tmpName() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), tmpCounter.Add(1))
}

// renameNoReplace moves an entry into place, failing if the target exists.
func renameNoReplace(ofd int, oname string, nfd int, nname string) error {
	return unix.Renameat2(ofd, oname, nfd, nname, unix.RENAME_NOREPLACE)
}

func utimesAt(dfd int, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(dfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// removeAllAt removes name in dfd recursively, relative to directory fds.
func removeAllAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := openDirAt(dfd, name)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// readDirNames lists the directory open as dfd (through a new descriptor,
// so that dfd's offset is untouched), without "." and "..".
func readDirNames(dfd int) ([]string, error) {
	fd, err := openDirAt(dfd, ".")
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
