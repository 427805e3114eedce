package housekeeping

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Part is one part of a root's disk use.
type Part struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"` // allocated on disk, each inode counted once in the whole report
	Files int64  `json:"files"`
	// Shared is what this part also uses that an earlier part already
	// counted: a snapshot's packs are hard links to its mirror's.
	Shared int64 `json:"shared,omitempty"`
	// Items splits the part: each mirror, each workspace.
	Items []Item `json:"items,omitempty"`
}

// Item is one mirror or workspace of a part.
type Item struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// Usage is what `gitfs df` shows.
type Usage struct {
	Root      string `json:"root"`
	Parts     []Part `json:"parts"`
	Total     int64  `json:"total"`
	FreeBytes uint64 `json:"free_bytes"` // on the root's file system, for this user
	SizeBytes uint64 `json:"size_bytes"`
}

// counter counts allocated bytes of inodes not seen before.
type counter struct {
	seen map[[2]uint64]bool
}

// add walks path and returns the new bytes, the files, and the bytes of
// inodes already counted. skip leaves out entries (and their trees).
func (c *counter) add(path string, skip func(p string, d fs.DirEntry) bool) (bytes, files, shared int64, err error) {
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		if skip != nil && skip(p, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		size := st.Blocks * 512
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if c.seen[key] {
			shared += size
			return nil
		}
		c.seen[key] = true
		bytes += size
		if !d.IsDir() {
			files++
		}
		return nil
	})
	return bytes, files, shared, err
}

// DiskUsage measures root by part: mirrors, snapshots, their contents
// files, the blob cache, workspaces, broken mirror copies and the rest
// (locks, markers). Hard links are counted once, where first met.
func DiskUsage(root string) (Usage, error) {
	u := Usage{Root: root}
	c := &counter{seen: map[[2]uint64]bool{}}
	// Parts in the order they are measured (an inode counts in the first
	// that meets it) and shown.
	mirrors, broken := &Part{Name: "mirrors"}, &Part{Name: "broken mirror copies"}
	snaps, contents := &Part{Name: "snapshots"}, &Part{Name: "snapshot contents"}
	blobs, wss := &Part{Name: "blob cache"}, &Part{Name: "workspaces"}
	other := &Part{Name: "other (locks, markers, records)"}
	fail := func(err error) (Usage, error) {
		if errors.Is(err, fs.ErrPermission) {
			return u, errors.New(err.Error() + " (the root belongs to the daemon's user: run gitfs df as that user, or as root)")
		}
		return u, err
	}

	mirrorDir := filepath.Join(root, "mirrors")
	entries, err := os.ReadDir(mirrorDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	for _, e := range entries {
		p := filepath.Join(mirrorDir, e.Name())
		name, isMirror := strings.CutSuffix(e.Name(), ".git")
		target := mirrors
		if !isMirror || strings.HasPrefix(name, ".") {
			target = broken
			if !strings.Contains(e.Name(), ".broken-") && !strings.Contains(e.Name(), ".removing-") {
				continue // access records and the like: "other"
			}
		}
		b, f, _, err := c.add(p, nil)
		if err != nil {
			return fail(err)
		}
		target.Bytes += b
		target.Files += f
		if target == mirrors {
			mirrors.Items = append(mirrors.Items, Item{Name: name, Bytes: b})
		}
	}

	snapDir := filepath.Join(root, "snapshots")
	entries, err = os.ReadDir(snapDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	for _, e := range entries {
		if len(e.Name()) != 40 || !e.IsDir() {
			continue
		}
		p := filepath.Join(snapDir, e.Name())
		b, f, sh, err := c.add(p, func(q string, d fs.DirEntry) bool { return q == filepath.Join(p, "contents") })
		if err != nil {
			return fail(err)
		}
		snaps.Bytes, snaps.Files, snaps.Shared = snaps.Bytes+b, snaps.Files+f, snaps.Shared+sh
		snaps.Items = append(snaps.Items, Item{Name: e.Name(), Bytes: b + sh})
		if b, f, _, err := c.add(filepath.Join(p, "contents"), nil); err == nil {
			contents.Bytes, contents.Files = contents.Bytes+b, contents.Files+f
		}
	}
	if b, f, _, err := c.add(filepath.Join(root, "blobs"), nil); err == nil {
		blobs.Bytes, blobs.Files = b, f
	} else {
		return fail(err)
	}

	wsDir := filepath.Join(root, "workspaces")
	entries, err = os.ReadDir(wsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	for _, e := range entries {
		b, f, _, err := c.add(filepath.Join(wsDir, e.Name()), nil)
		if err != nil {
			return fail(err)
		}
		wss.Bytes, wss.Files = wss.Bytes+b, wss.Files+f
		if !strings.HasPrefix(e.Name(), ".") {
			wss.Items = append(wss.Items, Item{Name: e.Name(), Bytes: b})
		}
	}
	if b, f, _, err := c.add(root, nil); err == nil {
		other.Bytes, other.Files = b, f
	} else {
		return fail(err)
	}
	for _, p := range []*Part{mirrors, broken, snaps, contents, blobs, wss, other} {
		u.Parts = append(u.Parts, *p)
	}
	for i := range u.Parts {
		u.Total += u.Parts[i].Bytes
		sort.Slice(u.Parts[i].Items, func(a, b int) bool { return u.Parts[i].Items[a].Bytes > u.Parts[i].Items[b].Bytes })
	}
	var sfs syscall.Statfs_t
	if syscall.Statfs(root, &sfs) == nil {
		u.FreeBytes = sfs.Bavail * uint64(sfs.Bsize)
		u.SizeBytes = sfs.Blocks * uint64(sfs.Bsize)
	}
	return u, nil
}
