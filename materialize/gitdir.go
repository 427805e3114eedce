package materialize

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
)

// writeGitDir makes root a git working tree at the snapshot's commit: a
// .git whose objects come from the snapshot's pinned packs (objects, an
// absolute path) through objects/info/alternates, a detached HEAD, and an
// index holding the stat data of every written entry, so `git status` is
// clean at once without hashing a file. It runs after every entry is
// written, so the index is newer than all of them (see mtimeFor).
func writeGitDir(root *os.Root, objects string, src source, w *writer) error {
	if err := root.Mkdir(".git", 0o777); err != nil {
		return err
	}
	for _, d := range []string{".git/objects", ".git/objects/info", ".git/objects/pack", ".git/refs", ".git/refs/heads", ".git/refs/tags", ".git/info"} {
		if err := root.Mkdir(d, 0o777); err != nil {
			return err
		}
	}
	files := map[string]string{
		".git/HEAD":                    src.Commit() + "\n",
		".git/objects/info/alternates": objects + "\n",
		".git/config":                  "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n",
		".git/description":             "Checked out by gitfs; objects come from the gitfs snapshot named in objects/info/alternates.\n",
	}
	for name, content := range files {
		if err := root.WriteFile(name, []byte(content), 0o666); err != nil {
			return err
		}
	}
	return writeIndex(root, w)
}

func writeIndex(root *os.Root, w *writer) error {
	p := w.p
	idx := &index.Index{Version: 2, Entries: make([]*index.Entry, 0, len(p.files)+len(p.links))}
	for i := range p.files {
		f := &p.files[i]
		mode := filemode.Regular
		if f.kind == snapshot.Executable {
			mode = filemode.Executable
		}
		idx.Entries = append(idx.Entries, indexEntry(p.filePath(f), f.id, mode, &w.fileStats[i]))
	}
	for i := range p.links {
		l := &p.links[i]
		idx.Entries = append(idx.Entries, indexEntry(p.filePath(l), l.id, filemode.Symlink, &w.linkStats[i]))
	}
	for i := 1; i < len(p.dirs); i++ {
		if d := &p.dirs[i]; d.gitlink {
			idx.Entries = append(idx.Entries, &index.Entry{Name: d.path, Hash: d.id, Mode: filemode.Submodule})
		}
	}
	// Written beside and renamed, as git does, so no reader sees half an index.
	f, err := root.OpenFile(".git/index.lock", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = index.NewEncoder(bw).Encode(idx)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return root.Rename(".git/index.lock", ".git/index")
}

func indexEntry(name string, id plumbing.Hash, mode filemode.FileMode, st *statData) *index.Entry {
	return &index.Entry{
		Name:       name,
		Hash:       id,
		Mode:       mode,
		CreatedAt:  tsTime(st.ctime),
		ModifiedAt: tsTime(st.mtime),
		Dev:        uint32(st.dev),
		Inode:      uint32(st.ino),
		UID:        st.uid,
		GID:        st.gid,
		Size:       uint32(st.size),
	}
}

func tsTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }
