package materialize

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gitdir"
	"github.com/gitfs/gitfs/snapshot"
)

// Remote is what a checkout's .git knows of its repository besides the
// commit, as a clone would: the remote's URL, its branches and tags, its
// HEAD branch, and packs holding every object those name.
type Remote struct {
	Repo  string // the repository's name in the root
	URL   string
	Refs  []gitdir.Ref
	Head  string   // the remote's HEAD branch (refs/heads/NAME), or ""
	Packs []string // pack files (.pack and .idx, absolute paths) to link in
	// Objects is the mirror's objects directory (absolute), borrowed
	// through alternates where links cannot be made and the snapshot is
	// another repository's.
	Objects string
}

// writeGitDir makes root a git working tree at the snapshot's commit: a
// .git whose objects are the snapshot's packs (and the remote's) hard-
// linked into .git/objects/pack, so that it survives being moved and
// owes nothing to the snapshot; where links cannot be made (another file
// system) it borrows the snapshot's objects (an absolute path) through
// objects/info/alternates instead, and reports borrows. HEAD is detached
// at the commit (with the reflog entry a checkout writes), the remote's
// branches are origin's, its tags are there, and the index holds the stat
// data of every written entry, so `git status` is clean at once without
// hashing a file. It runs after every entry is written, so the index is
// newer than all of them (see mtimeFor).
func writeGitDir(root *os.Root, objects string, src source, w *writer, remote *Remote) (borrows bool, err error) {
	if err := root.Mkdir(".git", 0o777); err != nil {
		return false, err
	}
	for _, d := range []string{".git/objects", ".git/objects/info", ".git/objects/pack", ".git/refs", ".git/refs/heads", ".git/refs/tags", ".git/refs/remotes", ".git/refs/remotes/origin", ".git/info", ".git/logs"} {
		if err := root.Mkdir(d, 0o777); err != nil {
			return false, err
		}
	}
	var packs []string
	own := true // the snapshot's packs: objects
	if remote != nil {
		packs = append(packs, remote.Packs...)
		if !src.BuiltFrom(remote.Repo) {
			// Snapshots are kept by commit alone: this one was built
			// from another repository holding the same commit, and its
			// packs are that repository's, every object of it. The
			// mirror's packs hold the commit (its mirror resolved it),
			// and are what alternates may borrow.
			own, objects = false, remote.Objects
		}
	}
	if ownPacks, err := filepath.Glob(filepath.Join(objects, "pack", "pack-*")); err == nil && own {
		packs = append(packs, ownPacks...)
	}
	linked, err := linkPacks(root, packs)
	if err != nil {
		return false, err
	}
	files := map[string]string{
		".git/HEAD":        src.Commit() + "\n",
		".git/description": "Checked out by gitfs; objects in objects/pack are shared with the gitfs snapshot and mirror.\n",
	}
	config := "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n"
	head := ""
	if remote != nil {
		head = remote.Head
		packed, branch := gitdir.PackedRefs(nil, remote.Refs, remote.Head, true)
		config = gitdir.Config(remote.URL, gitdir.Speedups{}) + branch
		files[".git/packed-refs"] = string(packed)
		if t := gitdir.OriginHEAD(remote.Head); t != "" {
			files[".git/refs/remotes/origin/HEAD"] = t
		}
	}
	files[".git/config"] = config
	files[".git/logs/HEAD"] = gitdir.HeadLogEntry("", strings.TrimPrefix(head, "refs/heads/"), src.Commit(), time.Now())
	if !linked {
		files[".git/objects/info/alternates"] = objects + "\n"
	}
	for name, content := range files {
		if err := root.WriteFile(name, []byte(content), 0o666); err != nil {
			return false, err
		}
	}
	return !linked, writeIndex(root, w)
}

// linkPacks hard-links packs into .git/objects/pack, packs before their
// indexes (an index without its pack would be a lie). It reports false,
// linking nothing more, when the target is on another file system, or
// when there was nothing to link.
func linkPacks(root *os.Root, packs []string) (bool, error) {
	dir, err := root.Open(".git/objects/pack")
	if err != nil {
		return false, err
	}
	defer dir.Close()
	n := 0
	for _, ext := range []string{".pack", ".idx"} {
		for _, p := range packs {
			if !strings.HasSuffix(p, ext) {
				continue
			}
			err := unix.Linkat(unix.AT_FDCWD, p, int(dir.Fd()), filepath.Base(p), 0)
			switch {
			case err == nil, errors.Is(err, unix.EEXIST):
				n++
			case errors.Is(err, unix.EXDEV), errors.Is(err, unix.EPERM):
				return false, nil
			case errors.Is(err, unix.ENOENT):
				// A mirror's pack that gc replaced meanwhile: its objects
				// are in the new pack, or in the snapshot's.
			default:
				return false, fmt.Errorf("link %s: %w", filepath.Base(p), err)
			}
		}
	}
	return n > 0, nil
}

func writeIndex(root *os.Root, w *writer) error {
	p := w.p
	idx := make([]gitdir.IndexEntry, 0, len(p.files)+len(p.links))
	for i := range p.files {
		f := &p.files[i]
		mode := gitdir.ModeRegular
		if f.kind == snapshot.Executable {
			mode = gitdir.ModeExecutable
		}
		idx = append(idx, indexEntry(p.filePath(f), f.id, mode, &w.fileStats[i]))
	}
	for i := range p.links {
		l := &p.links[i]
		idx = append(idx, indexEntry(p.filePath(l), l.id, gitdir.ModeSymlink, &w.linkStats[i]))
	}
	for i := 1; i < len(p.dirs); i++ {
		if d := &p.dirs[i]; d.gitlink {
			idx = append(idx, gitdir.IndexEntry{Path: d.path, ID: d.id, Mode: gitdir.ModeGitlink})
		}
	}
	data, err := gitdir.EncodeIndex(idx, nil)
	if err != nil {
		return err
	}
	// Written beside and renamed, as git does, so no reader sees half an index.
	f, err := root.OpenFile(".git/index.lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return root.Rename(".git/index.lock", ".git/index")
}

func indexEntry(name string, id snapshot.ID, mode uint32, st *statData) gitdir.IndexEntry {
	return gitdir.IndexEntry{
		Path:  name,
		ID:    id,
		Mode:  mode,
		Ctime: tsTime(st.ctime),
		Mtime: tsTime(st.mtime),
		Dev:   uint32(st.dev),
		Ino:   uint32(st.ino),
		UID:   st.uid,
		GID:   st.gid,
		Size:  uint32(st.size),
	}
}

func tsTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
