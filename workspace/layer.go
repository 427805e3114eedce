//go:build linux

package workspace

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

// Layer is a workspace's upper layer: ROOT/workspaces/NAME/upper mirrors
// the workspace's changed paths. Besides ordinary files it holds records:
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
// Every change is one atomic step on disk: an entry is prepared under a
// temp name in work/ (on the same file system) and renamed into place, so
// that a crash leaves the old state or the new one, never a mix; work/ is
// emptied when the workspace is opened. Every call names entries relative
// to directory descriptors and never follows a symlink.
type Layer struct {
	upper, work int    // descriptors of upper/ and work/
	xp          string // xattr prefix
	chown       bool
	uid, gid    uint32 // owner of copied-up entries
}

// Record names, after the prefix.
const (
	xOpaque   = "opaque"
	xRedirect = "redirect"
	xIno      = "ino"
	xOrigin   = "origin"
)

func openLayer(opts Options, dir string, uid, gid uint32) (*Layer, error) {
	upper, err := unix.Open(filepath.Join(dir, "upper"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("upper: %w", err)
	}
	work, err := unix.Open(filepath.Join(dir, "work"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(upper)
		return nil, fmt.Errorf("work: %w", err)
	}
	// Temp entries of steps a crash interrupted.
	if names, err := ReadDirNames(work); err == nil {
		for _, n := range names {
			locks.RemoveAllAt(work, n)
		}
	}
	xp := opts.XattrPrefix
	if xp == "" {
		xp = "user.gitfs."
	}
	return &Layer{upper: upper, work: work, xp: xp, chown: opts.Chown, uid: uid, gid: gid}, nil
}

func (l *Layer) close() {
	if l.upper >= 0 {
		unix.Close(l.upper)
	}
	if l.work >= 0 {
		unix.Close(l.work)
	}
	l.upper, l.work = -1, -1
}

// Upper is the descriptor of the layer's root directory (the workspace's
// root), -1 once closed.
func (l *Layer) Upper() int { return l.upper }

// Reserved reports whether an extended attribute name is one of the
// layer's own records (of either prefix), which users never see or set.
func Reserved(attr string) bool {
	return strings.HasPrefix(attr, "user.gitfs.") || strings.HasPrefix(attr, "trusted.gitfs.")
}

// IsWhiteout reports whether st is a whiteout record.
func IsWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// Opaque reports whether directory name in dfd ("" for dfd) hides the
// lower layer.
func (l *Layer) Opaque(dfd int, name string) bool {
	_, ok := getXattr(dfd, name, l.xp+xOpaque)
	return ok
}

// Redirect is the lower path a moved directory shows, if recorded.
func (l *Layer) Redirect(dfd int, name string) (string, bool) {
	return getXattr(dfd, name, l.xp+xRedirect)
}

// Origin is the lower path a copied-up file came from, if recorded.
func (l *Layer) Origin(dfd int, name string) (string, bool) {
	return getXattr(dfd, name, l.xp+xOrigin)
}

// Ino is the inode number the entry had before copy-up, if recorded.
func (l *Layer) Ino(dfd int, name string) (uint64, bool) {
	s, ok := getXattr(dfd, name, l.xp+xIno)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n <= 1 || n == ^uint64(0) {
		return 0, false
	}
	return n, true
}

// SetOpaque marks the directory open as fd as hiding the lower layer.
func (l *Layer) SetOpaque(fd int) error { return unix.Fsetxattr(fd, l.xp+xOpaque, []byte("y"), 0) }

// MarkMoved records, on directory name in dfd that is about to move, where
// its lower layer comes from: lowerPath, or nowhere (opaque) if it has
// none, so that it shows the same content at its new place.
func (l *Layer) MarkMoved(dfd int, name string, lowerPath string, hasLower bool) error {
	if hasLower {
		return setXattr(dfd, name, l.xp+xRedirect, lowerPath)
	}
	return setXattr(dfd, name, l.xp+xOpaque, "y")
}

// Own gives entry name in dfd to uid/gid, when the layer may chown.
func (l *Layer) Own(dfd int, name string, uid, gid uint32) {
	if l.chown {
		unix.Fchownat(dfd, name, int(uid), int(gid), unix.AT_SYMLINK_NOFOLLOW)
	}
}

// OwnFD gives the file open as fd to uid/gid, when the layer may chown.
func (l *Layer) OwnFD(fd int, uid, gid uint32) error {
	if !l.chown {
		return nil
	}
	return unix.Fchown(fd, int(uid), int(gid))
}

// CopyUp writes lower entry e (at lowerPath in snap) as name in the upper
// directory pfd: a directory (merged: its lower entries still show), a
// symlink, or a file with its content unless withData is false (a file
// about to be truncated). ino is recorded so the entry keeps its inode
// number; mtime is the unchanged entry's time (the commit's).
func (l *Layer) CopyUp(snap *snapshot.Snapshot, pfd int, name string, e snapshot.Entry, lowerPath string, ino uint64, withData bool, mtime time.Time) error {
	tmp := tmpName()
	fail := func(err error) error {
		locks.RemoveAllAt(l.work, tmp)
		return err
	}
	isDir := e.Kind == snapshot.Dir || e.Kind == snapshot.Gitlink
	switch {
	case isDir:
		if err := unix.Mkdirat(l.work, tmp, 0o700); err != nil {
			return fail(err)
		}
		if err := ChmodAt(l.work, tmp, 0o755); err != nil {
			return fail(err)
		}
	case e.Kind == snapshot.Symlink:
		target, err := snap.ReadLink(e.ID)
		if err != nil {
			return &LowerError{Op: "copy-up", Path: lowerPath, Err: err}
		}
		if err := unix.Symlinkat(target, l.work, tmp); err != nil {
			return fail(err)
		}
	default:
		fd, err := unix.Openat(l.work, tmp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fail(err)
		}
		dst := os.NewFile(uintptr(fd), tmp)
		if withData {
			if err := copyBlob(snap, dst, e, lowerPath); err != nil {
				dst.Close()
				return fail(err)
			}
		}
		mode := uint32(0o644)
		if e.Kind == snapshot.Executable {
			mode = 0o755
		}
		err = unix.Fchmod(fd, mode)
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
	}
	l.Own(l.work, tmp, l.uid, l.gid)
	// Best effort: without it the entry gets a new inode number on restart.
	setXattr(l.work, tmp, l.xp+xIno, strconv.FormatUint(ino, 10))
	if !isDir {
		setXattr(l.work, tmp, l.xp+xOrigin, lowerPath)
	}
	if err := utimesAt(l.work, tmp, mtime); err != nil {
		return fail(err)
	}
	restore := keepTimes(pfd)
	if err := unix.Renameat2(l.work, tmp, pfd, name, unix.RENAME_NOREPLACE); err != nil {
		return fail(err)
	}
	restore()
	return nil
}

// LowerError is a failure to read the lower layer (an object of the
// snapshot), as opposed to one of the upper layer's own disk: the file
// system logs it and answers EIO.
type LowerError struct {
	Op, Path string
	Err      error
}

func (e *LowerError) Error() string {
	return fmt.Sprintf("%s %s: object unreadable: %v", e.Op, e.Path, e.Err)
}
func (e *LowerError) Unwrap() error { return e.Err }

func copyBlob(snap *snapshot.Snapshot, dst *os.File, e snapshot.Entry, lowerPath string) error {
	b, err := snap.OpenAt(lowerPath, e) // what checkout writes: .gitattributes conversions applied
	if err != nil {
		return &LowerError{Op: "copy-up", Path: lowerPath, Err: err}
	}
	defer b.Close()
	var src io.Reader = io.NewSectionReader(b, 0, b.Size())
	if f := snapshot.BlobFile(b); f != nil {
		if _, err := f.Seek(0, io.SeekStart); err == nil {
			src = f // lets io.Copy use copy_file_range
		}
	}
	n, err := io.Copy(dst, src)
	if err != nil {
		var se unix.Errno
		if errors.As(err, &se) {
			return se // ENOSPC and friends go to the writer
		}
		return &LowerError{Op: "copy-up", Path: lowerPath, Err: err}
	}
	if n != b.Size() {
		return &LowerError{Op: "copy-up", Path: lowerPath, Err: io.ErrUnexpectedEOF}
	}
	return nil
}

// Place creates an entry name in the upper directory pfd with mk,
// replacing a whiteout there atomically. It fails with EEXIST if a real
// entry exists.
func (l *Layer) Place(pfd int, name string, isDir bool, mk func(dfd int, nm string) error) error {
	st, err := Lstat(pfd, name)
	if err == nil && !IsWhiteout(&st) {
		return unix.EEXIST
	}
	if err != nil && err != unix.ENOENT {
		return err
	}
	if err != nil {
		return mk(pfd, name)
	}
	tmp := tmpName()
	if err := mk(l.work, tmp); err != nil {
		return err
	}
	if isDir {
		// A directory cannot replace a non-directory by rename: swap them.
		if err := unix.Renameat2(l.work, tmp, pfd, name, unix.RENAME_EXCHANGE); err != nil {
			locks.RemoveAllAt(l.work, tmp)
			return err
		}
		unix.Unlinkat(l.work, tmp, 0)
		return nil
	}
	if err := unix.Renameat(l.work, tmp, pfd, name); err != nil {
		locks.RemoveAllAt(l.work, tmp)
		return err
	}
	return nil
}

// Whiteout replaces name in pfd by a whiteout: atomically over an
// existing non-directory if replace, else where nothing is.
func (l *Layer) Whiteout(pfd int, name string, replace bool) error {
	if !replace {
		return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}
	tmp := tmpName()
	if err := unix.Mknodat(l.work, tmp, unix.S_IFCHR, 0); err != nil {
		return err
	}
	if err := unix.Renameat(l.work, tmp, pfd, name); err != nil {
		unix.Unlinkat(l.work, tmp, 0)
		return err
	}
	return nil
}

// RemoveDir removes the upper directory name in pfd (empty as the
// workspace shows it), leaving a whiteout in its place if the lower layer
// has that name. Its remains are deleted from work/, out of sight.
func (l *Layer) RemoveDir(pfd int, name string, lowerHas bool) error {
	tmp := tmpName()
	if lowerHas {
		if err := unix.Mknodat(l.work, tmp, unix.S_IFCHR, 0); err != nil {
			return err
		}
		if err := unix.Renameat2(l.work, tmp, pfd, name, unix.RENAME_EXCHANGE); err != nil {
			unix.Unlinkat(l.work, tmp, 0)
			return err
		}
	} else if err := unix.Renameat(pfd, name, l.work, tmp); err != nil {
		return err
	}
	// Done as the workspace sees it; what cannot be deleted now is deleted
	// when work/ is emptied on the next open.
	locks.RemoveAllAt(l.work, tmp)
	return nil
}

// ClearDir removes what the upper directory name in pfd holds: in a
// directory that the workspace shows empty, only whiteouts.
func ClearDir(pfd int, name string) {
	fd, err := OpenDir(pfd, name)
	if err != nil {
		return
	}
	names, _ := ReadDirNames(fd)
	for _, nm := range names {
		locks.RemoveAllAt(fd, nm)
	}
	unix.Close(fd)
}

// Move renames upper entry name in spfd to newName in dpfd. If the lower
// layer has the source's name (leaveWhiteout), a whiteout takes its place
// in the same step. A directory moving onto a whiteout swaps with it.
func (l *Layer) Move(spfd int, name string, dpfd int, newName string, isDir, leaveWhiteout bool) error {
	st, derr := Lstat(dpfd, newName)
	dstWhiteout := derr == nil && IsWhiteout(&st)
	switch {
	case isDir && dstWhiteout:
		err := unix.Renameat2(spfd, name, dpfd, newName, unix.RENAME_EXCHANGE)
		if err == nil && !leaveWhiteout {
			unix.Unlinkat(spfd, name, 0)
		}
		return err
	case leaveWhiteout:
		err := unix.Renameat2(spfd, name, dpfd, newName, unix.RENAME_WHITEOUT)
		if err == unix.EINVAL {
			if err = unix.Renameat(spfd, name, dpfd, newName); err == nil {
				err = unix.Mknodat(spfd, name, unix.S_IFCHR, 0)
			}
		}
		return err
	}
	return unix.Renameat(spfd, name, dpfd, newName)
}

// RemoveUpper removes the upper entry at slash-separated path p (and
// whatever is below it).
func (l *Layer) RemoveUpper(p string) error {
	err := l.atUpper(p, func(dfd int, name string) error { return locks.RemoveAllAt(dfd, name) })
	if err == unix.ENOENT {
		return nil // a parent is not in the upper layer: nothing to remove
	}
	return err
}

// removeEmptyDir removes upper directory p if it is empty, reporting
// whether it did.
func (l *Layer) removeEmptyDir(p string) bool {
	return l.atUpper(p, func(dfd int, name string) error { return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR) }) == nil
}

// atUpper runs fn on the upper entry at slash-separated path p, as its
// parent's descriptor and its name, opening the parents without following
// a link; an error opening a parent is returned as it is.
func (l *Layer) atUpper(p string, fn func(dfd int, name string) error) error {
	parts := splitPath(p)
	dfd := l.upper
	for _, comp := range parts[:len(parts)-1] {
		fd, err := OpenDir(dfd, comp)
		if dfd != l.upper {
			unix.Close(dfd)
		}
		if err != nil {
			return err
		}
		dfd = fd
	}
	err := fn(dfd, parts[len(parts)-1])
	if dfd != l.upper {
		unix.Close(dfd)
	}
	return err
}

// Helpers on names relative to directory descriptors, shared with the
// file system. None follows a symlink.

// Lstat stats entry name in dfd itself.
func Lstat(dfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// OpenDir opens directory name in dfd, refusing a symlink.
func OpenDir(dfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// ReadDirNames lists the directory open as dfd (through a new descriptor,
// so that dfd's offset is untouched), without "." and "..".
func ReadDirNames(dfd int) ([]string, error) {
	fd, err := OpenDir(dfd, ".")
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// ChmodAt sets the mode of the entry name in dfd itself, never of what it
// would point to if it were a symlink: fchmodat2 with AT_SYMLINK_NOFOLLOW
// (Linux >= 6.6), else through an O_PATH descriptor of the entry opened
// without following links, refusing a link. Every name the daemon touches
// for a caller is treated as one that could have been swapped for a link.
func ChmodAt(dfd int, name string, mode uint32) error {
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

// Futimens sets the times of the file open as fd (UTIME_OMIT/UTIME_NOW allowed).
func Futimens(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// keepTimes restores a directory's times after a change that does not
// change its content as the user sees it (a copy-up into it).
func keepTimes(fd int) func() {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return func() {}
	}
	return func() {
		ts := [2]unix.Timespec{st.Atim, st.Mtim}
		Futimens(fd, &ts)
	}
}

// procPath names the entry name in the directory open as dfd without a long
// host path: the xattr calls have no *at variants.
func procPath(dfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name
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

// Xattr calls on entry name in dfd ("" for dfd itself), for users' own
// attributes.

// GetXattr reads a user's attribute into dest.
func GetXattr(dfd int, name, attr string, dest []byte) (int, error) {
	if name == "" {
		return unix.Fgetxattr(dfd, attr, dest)
	}
	return unix.Lgetxattr(procPath(dfd, name), attr, dest)
}

// ListXattr lists attribute names into dest.
func ListXattr(dfd int, name string, dest []byte) (int, error) {
	if name == "" {
		return unix.Flistxattr(dfd, dest)
	}
	return unix.Llistxattr(procPath(dfd, name), dest)
}

// SetXattr sets a user's attribute.
func SetXattr(dfd int, name, attr string, data []byte, flags int) error {
	if name == "" {
		return unix.Fsetxattr(dfd, attr, data, flags)
	}
	return unix.Lsetxattr(procPath(dfd, name), attr, data, flags)
}

// RemoveXattr removes a user's attribute.
func RemoveXattr(dfd int, name, attr string) error {
	if name == "" {
		return unix.Fremovexattr(dfd, attr)
	}
	return unix.Lremovexattr(procPath(dfd, name), attr)
}

func utimesAt(dfd int, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	return unix.UtimesNanoAt(dfd, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// tmpCounter makes names in a workspace's work directory unique within the
// process; the work directory is emptied when a workspace is opened.
var tmpCounter atomic.Uint64

func tmpName() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), tmpCounter.Add(1))
}

func splitPath(p string) []string { return strings.Split(p, "/") }

func timeOf(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
