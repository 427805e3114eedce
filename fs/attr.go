//go:build linux

package fs

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Attributes and inode numbers. Unchanged entries get theirs from the
// snapshot (owner: the workspace's, times: the commit's); upper entries
// from their file on disk. Inode numbers are stable for the life of a
// workspace, across restarts: derived from the workspace's id and the
// entry's path (and blob, for files), or recorded at copy-up.

func kindMode(k snapshot.Kind) uint32 {
	switch k {
	case snapshot.Symlink:
		return syscall.S_IFLNK
	case snapshot.Dir, snapshot.Gitlink:
		return syscall.S_IFDIR
	}
	return syscall.S_IFREG
}

func kindClass(k snapshot.Kind) string {
	switch kindMode(k) {
	case syscall.S_IFLNK:
		return "l"
	case syscall.S_IFDIR:
		return "d"
	}
	return "f"
}

// hashIno derives a stable inode number from a namespace id and parts.
func hashIno(id uint64, parts ...string) uint64 {
	var stack [256]byte
	buf := binary.LittleEndian.AppendUint64(stack[:0], id)
	for _, p := range parts {
		buf = append(append(buf, p...), 0)
	}
	return inoOf(buf)
}

// inoOf is hashIno of its input, laid out: the id, then each part and a
// NUL. Built on the stack, it allocates nothing (a workspace's git dir
// asks for every file's number).
func inoOf(in []byte) uint64 {
	sum := sha256.Sum256(in)
	v := binary.LittleEndian.Uint64(sum[:8])
	// 0 and 1 (root) and ^0 (go-fuse's poll hack) are reserved.
	if v <= 1 || v == ^uint64(0) {
		v = 2 + v&0xffff
	}
	return v
}

// lowerIno is the inode number of an unchanged entry. A file's number
// includes its blob, so that `ws update` replaces a changed file with a new
// inode as a checkout would: the kernel's page cache is per inode, and a
// handle opened before the update must keep reading the old bytes.
// Directories keep theirs across updates.
func (v *view) lowerIno(p string, e snapshot.Entry) uint64 {
	if v.sharesFile(p, e) {
		return sharedIno(v.browse.repo, e)
	}
	class := kindClass(e.Kind)
	if class == "d" {
		return hashIno(v.id, "L", class, p)
	}
	// hashIno(v.id, "L", class, p, e.ID.String()), without the strings.
	var stack [256]byte
	buf := binary.LittleEndian.AppendUint64(stack[:0], v.id)
	buf = append(append(buf, 'L', 0), class...)
	buf = append(append(append(buf, 0), p...), 0)
	buf = append(hex.AppendEncode(buf, e.ID[:]), 0)
	if m := v.reissued.Load(); m != nil {
		if epoch, ok := (*m)[p]; ok {
			buf = binary.LittleEndian.AppendUint64(buf, epoch)
		}
	}
	return inoOf(buf)
}

// sharesFile reports whether the view shows entry e at lower path p as a
// shared file (shared.go): a browse path's regular file whose bytes are
// its blob's, no .gitattributes conversion applied, unless the mount
// gives browse files their commit's time (Options.BrowseCommitTimes).
// Caller holds v.mu.
func (v *view) sharesFile(p string, e snapshot.Entry) bool {
	if v.browse == nil || v.snap == nil || v.fs.opts.BrowseCommitTimes || (e.Kind != snapshot.File && e.Kind != snapshot.Executable) {
		return false
	}
	conv, err := v.snap.Conversion(p, e)
	return err == nil && conv.None()
}

// sharedIno is a shared file's inode number: its repository's, its
// blob's and its mode's, nothing of its path or commit.
func sharedIno(repo string, e snapshot.Entry) uint64 {
	mode := "f"
	if e.Kind == snapshot.Executable {
		mode = "x"
	}
	return hashIno(0, "shared", repo, mode, e.ID.String())
}

// blobTime is a shared file's mtime, ctime and atime, derived from its
// blob: one inode has one time, whichever commits show it, and a time
// that follows the content keeps rsync's quick check (size and mtime, in
// seconds) honest across tags, a changed file showing another time. The
// times lie in the past, from 1980 on (zip's epoch) over 2^30 seconds
// (34 years), so that no tool warns of a time in the future; two blobs
// of one path share a second once in 2^30.
func blobTime(id snapshot.ID) time.Time {
	h := binary.LittleEndian.Uint64(id[:8])
	const since1980 = 315532800
	return time.Unix(since1980+int64(h&(1<<30-1)), int64((h>>30)%1e9))
}

// reissue gives the lower files at paths new inode numbers (see
// view.reissued); paths with no lower file (a discarded new file, a
// build's output) need none and are not kept, so the map is bounded by
// the tree. Caller holds mu for writing, v.snap the new commit.
func (v *view) reissue(paths []string) {
	var m map[string]uint64
	for _, p := range paths {
		if e, err := v.snap.Lookup(p); err != nil || kindClass(e.Kind) == "d" {
			continue
		}
		if m == nil {
			m = map[string]uint64{}
			if old := v.reissued.Load(); old != nil {
				maps.Copy(m, *old)
			}
		}
		m[p] = v.epoch
	}
	if m != nil {
		v.reissued.Store(&m)
	}
}

// upperIno is the inode number of the upper entry name in dfd: the number
// it had before copy-up if recorded, else derived from the upper file's own
// inode number (stable across restarts, shared by hard links).
func (v *view) upperIno(dfd int, name string, st *unix.Stat_t) uint64 {
	if n, ok := v.layer.Ino(dfd, name); ok {
		return n
	}
	return v.newUpperIno(st)
}

func (v *view) newUpperIno(st *unix.Stat_t) uint64 {
	return hashIno(v.id, "U", strconv.FormatUint(st.Ino, 10))
}

func (v *view) lowerAttr(e snapshot.Entry, p string, out *fuse.Attr) syscall.Errno {
	out.Mode = kindMode(e.Kind)
	switch e.Kind {
	case snapshot.File:
		out.Mode |= 0o644
	case snapshot.Executable:
		out.Mode |= 0o755
	case snapshot.Symlink:
		out.Mode |= 0o777
	default:
		out.Mode |= 0o755
		out.Size = 4096
	}
	if out.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		n, err := v.snap.SizeAt(p, e) // of what checkout writes (.gitattributes)
		if err != nil {
			return v.lowerErrno("size", p, err)
		}
		out.Size = uint64(n)
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 4096
	out.Nlink = 1
	if e.Kind == snapshot.Dir {
		entries, err := v.snap.Tree(e.ID)
		if err != nil {
			return v.lowerErrno("tree", p, err)
		}
		out.Nlink = linkCount(2 + subdirs(entries))
	} else if e.Kind == snapshot.Gitlink {
		out.Nlink = 2 // shown as an empty directory
	}
	out.Uid, out.Gid = v.uid, v.gid
	setTimes(out, v.lowerTime(p))
	return 0
}

// lowerTimes gives the times (mtime, ctime, atime) an unchanged entry
// shows: its commit's time for what the view showed from the start, and,
// for a path ws update changed since, the time of that update, as git
// checkout leaves an unchanged file's mtime alone and gives a file it
// writes the time of writing. So a build after ws update rebuilds what
// changed and only that, and the kernel (which drops a file's cached
// pages when its mtime moves, auto_inval_data) keeps the pages of every
// unchanged file. It is written by Update under view.mu and read under it,
// or by the git dir's maker, which Update waits for.
type lowerTimes struct {
	base    time.Time            // zero: the snapshot's commit time
	changed map[string]time.Time // lower path -> when an update changed it
}

// changedMax bounds lowerTimes.changed; past it everything takes the
// latest update's time (forward: a build rebuilds, never misses).
const changedMax = 1 << 20

// at is the time of lower path p, given the snapshot's commit time.
func (lt lowerTimes) at(p string, commit time.Time) time.Time {
	for q := p; len(lt.changed) > 0; {
		if t, ok := lt.changed[q]; ok {
			return t // q is p, or a directory an update added with p below
		}
		i := strings.LastIndexByte(q, '/')
		if i < 0 {
			break
		}
		q = q[:i]
	}
	if lt.base.IsZero() {
		return commit
	}
	return lt.base
}

// note records paths changed at t, in place: copying the record on every
// update would cost its size each time, and a slot that runs job after
// job grows it.
func (lt *lowerTimes) note(paths []string, t time.Time) {
	if len(lt.changed)+len(paths) > changedMax {
		*lt = lowerTimes{base: t}
		return
	}
	if lt.changed == nil {
		lt.changed = make(map[string]time.Time, len(paths))
	}
	for _, p := range paths {
		lt.changed[p] = t
	}
}

// lowerTime is lowerTimes.at for the view's snapshot. Caller holds v.mu.
func (v *view) lowerTime(p string) time.Time { return v.times.at(p, v.snap.CommitTime()) }

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
	// For a directory this counts its upper subdirectories only; where
	// lower ones show through, upperDirNlink adds them.
	out.Nlink = uint32(st.Nlink)
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

// Directory link counts are ext4's: 2 (its entry in its parent and its own
// ".") plus one per subdirectory (their ".."), as find -noleaf-free walks
// and POSIX tests (pjdfstest rename/24) expect, counted in the view the
// workspace shows: upper and lower subdirectories, less those a whiteout
// hides or an upper entry replaces. Past ext4's limit the count is 1
// ("unknown", ext4's dir_nlink), as it also is on an upper file system
// that does not count subdirectories (btrfs).

// maxLinks is ext4's EXT4_LINK_MAX.
const maxLinks = 65000

func linkCount(n uint64) uint32 {
	if n > maxLinks {
		return 1
	}
	return uint32(n)
}

// subdirs counts the entries of a tree shown as directories.
func subdirs(entries []snapshot.Entry) uint64 {
	n := uint64(0)
	for _, e := range entries {
		if kindMode(e.Kind) == syscall.S_IFDIR {
			n++
		}
	}
	return n
}

// upperDirNlink is the link count of an upper directory, open as dfd with
// stat st, whose node state is ns: the upper file system's own count
// (2 + upper subdirectories, on ext4, xfs, tmpfs) plus each lower
// subdirectory showing through, which no upper entry of its name hides
// (a whiteout), replaces (a file) or already counted (a merged
// subdirectory). Caller holds v.mu.
func (n *node) upperDirNlink(dfd int, st *unix.Stat_t, ns nodeState) (uint32, syscall.Errno) {
	if st.Nlink < 2 {
		return 1, 0 // the upper file system does not count (btrfs): unknown
	}
	count := uint64(st.Nlink)
	lower, e := n.lowerEntries(ns)
	if e != 0 {
		return 0, e
	}
	for _, le := range lower {
		if kindMode(le.Kind) != syscall.S_IFDIR {
			continue
		}
		var ust unix.Stat_t
		if err := unix.Fstatat(dfd, le.Name, &ust, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
			count++
		}
	}
	return linkCount(count), 0
}

// childDirNlink sets out.Nlink for name, an upper directory lookupChild
// found in n (ci). Caller holds v.mu.
func (n *node) childDirNlink(name string, ci *childInfo, out *fuse.Attr) syscall.Errno {
	if !ci.upper || ci.mode != syscall.S_IFDIR {
		return 0
	}
	pfd, done, e := n.dirFd()
	if e != 0 {
		return e
	}
	defer done()
	fd, err := workspace.OpenDir(pfd, name)
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(fd)
	nl, e := n.upperDirNlink(fd, &ci.st, nodeState{upper: true, opaque: ci.opaque, hasLower: ci.hasLower,
		hasLowerPath: ci.hasLowerPath, lowerPath: ci.lowerPath, lower: ci.lower})
	if e != 0 {
		return e
	}
	out.Nlink = nl
	return 0
}
