//go:build linux

package workspace

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
)

// diffTrees lists the paths whose entry differs between trees a and b (a
// path whose subtree was added or removed as a whole is listed once).
func diffTrees(sa, sb *snapshot.Snapshot, a, b snapshot.ID, prefix string, out *[]string) error {
	if a == b {
		return nil
	}
	ea, err := sa.Tree(a)
	if err != nil {
		return err
	}
	eb, err := sb.Tree(b)
	if err != nil {
		return err
	}
	return snapshot.Diff(ea, eb, func(x, y *snapshot.Entry) error {
		if x != nil && y != nil && x.Kind == snapshot.Dir && y.Kind == snapshot.Dir {
			return diffTrees(sa, sb, x.ID, y.ID, join(prefix, x.Name), out)
		}
		if x == nil {
			x = y
		}
		*out = append(*out, join(prefix, x.Name))
		return nil
	})
}

// under reports whether p lies below directory dir (without making
// dir+"/": writeIndex asks it of every directory it takes whole).
func under(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// localChange is a path the upper layer changes: merged directories only
// conflict when the directory itself changed or went away upstream.
type localChange struct {
	path   string
	merged bool
}

func (w *Workspace) localChanges() ([]localChange, error) {
	var out []localChange
	err := w.walkUpper(func(e *upperEntry) (bool, error) {
		if e.st.Mode&unix.S_IFMT != unix.S_IFDIR || e.whiteout {
			out = append(out, localChange{path: e.path})
			if e.origin != "" && e.origin != e.path {
				out = append(out, localChange{path: e.origin})
			}
			return false, nil
		}
		if e.opaque {
			out = append(out, localChange{path: e.path})
			return false, nil
		}
		if e.redirect != "" && e.redirect != e.path {
			out = append(out, localChange{path: e.path}, localChange{path: e.redirect})
			return false, nil
		}
		out = append(out, localChange{path: e.path, merged: true})
		return true, nil
	})
	return out, err
}

func conflicts(changed []string, local []localChange) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range local {
		for _, c := range changed {
			hit := l.path == c || under(l.path, c)
			if !l.merged && under(c, l.path) {
				hit = true
			}
			if hit && !seen[l.path] {
				seen[l.path] = true
				out = append(out, l.path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Discard says which local changes Switch drops.
type Discard int

const (
	// KeepChanges keeps every local change, and refuses the switch if one
	// touches a path that changed between the commits.
	KeepChanges Discard = iota
	// DiscardConflicting drops the local changes that conflict and keeps
	// the others.
	DiscardConflicting
	// DiscardAll drops every local change (the git dir aside): the
	// workspace shows the new commit as a new workspace would, while what
	// the kernel caches of every file unchanged keeps serving (a CI agent
	// reusing its workspace, as a persistent clone does with
	// `git checkout -f && git clean -fdx`).
	DiscardAll
)

// Switched is what Switch did, for the caller to tell the kernel.
type Switched struct {
	// Changed are the paths whose entry changed (content, kind, presence):
	// whatever is cached of them and below them is stale.
	Changed []string
	// Dirs are directories that lost only their upper copy (DiscardAll):
	// the same directory shows from the lower layer, with its entries,
	// but perhaps other attributes. Dropping more than their attributes
	// would drop the kernel's cache of every file below them.
	Dirs []string
	// Release releases the old snapshot; call it once nothing reads the
	// old snapshot any more.
	Release func()
	// Discarded are the paths among Changed whose local change was
	// dropped: such a path shows its lower file again, whose inode number
	// the upper copy had kept, while a descriptor of the change may still
	// be open; the caller gives the lower file a new number.
	Discarded []string
	// Saved waits until meta.json records the switch, durably, which
	// Switch started in the background (two syncs: 2-5 ms, done while
	// the caller tells the kernel). An error means the workspace shows
	// the new commit but a restart would show the old one (with its git
	// dir made again); the next Switch writes the record again.
	Saved func() error
}

// Switch moves the workspace to newSnap (spec.Commit's) atomically:
// local changes are kept; if one touches a path that changed between the
// old and the new commit, the switch is refused with a *ConflictError
// naming the paths, unless discard says to drop them (see Discard). On
// error the workspace is as it was and newRelease is the caller's. The
// record on disk (meta.json) follows in the background: Switched.Saved.
func (w *Workspace) Switch(spec Spec, newSnap *snapshot.Snapshot, newRelease func(), discard Discard) (Switched, error) {
	// Records reach the disk in the order of their switches.
	w.saving.wait() // a failure was reported by its own Switch's Saved
	var changed []string
	name := w.meta.Name
	if !IsCommitID(spec.Commit) || newSnap.Commit() != spec.Commit {
		return Switched{}, fmt.Errorf("update workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	if spec.Repo != "" && spec.Repo != w.meta.Repo {
		return Switched{}, fmt.Errorf("update workspace %s: it shows %s, not %s", name, w.meta.Repo, spec.Repo)
	}
	if err := diffTrees(w.snap, newSnap, w.snap.Root(), newSnap.Root(), "", &changed); err != nil {
		return Switched{}, fmt.Errorf("update workspace %s: compare commits: %w", name, err)
	}
	local, err := w.localChanges()
	if err != nil {
		return Switched{}, fmt.Errorf("update workspace %s: %w", name, err)
	}
	bad := conflicts(changed, local)
	if len(bad) > 0 && discard == KeepChanges {
		return Switched{}, &ConflictError{Workspace: name, Paths: bad}
	}
	if discard == DiscardAll {
		bad = nil
		for _, l := range local {
			if !l.merged {
				bad = append(bad, l.path)
			}
		}
	}
	for _, p := range bad {
		if err := w.layer.RemoveUpper(p); err != nil {
			return Switched{}, fmt.Errorf("update workspace %s: discard %s: %w", name, p, err)
		}
	}
	var dirs []string
	if discard == DiscardAll {
		// Directories copied up only to hold changes (or for their own
		// mode or times) go too, deepest first, once empty.
		for i := len(local) - 1; i >= 0; i-- {
			if l := local[i]; l.merged && w.layer.removeEmptyDir(l.path) {
				dirs = append(dirs, l.path)
			}
		}
	}
	m := w.meta
	oldCommit := m.Commit
	m.Commit = spec.Commit
	if spec.Rev != "" {
		m.Rev = spec.Rev
	}
	if spec.MergeInto != "" {
		m.MergeInto = spec.MergeInto
	}
	m.Base = spec.Base
	m.Updated = time.Now()
	// The git dir follows after (UpdateGitDir, which waits for the
	// record); until then it is marked pending, durably with meta.json
	// (writeMeta syncs the directory).
	if err := os.WriteFile(filepath.Join(w.dir, gitDirPendingName), nil, 0o600); err != nil {
		return Switched{}, fmt.Errorf("update workspace %s: %w", name, err)
	}
	w.saving = startSave(w.dir, m)
	saving := w.saving
	oldRelease := w.release
	w.meta, w.snap, w.release = m, newSnap, newRelease
	w.attrsMoved = w.attrsMoved || slices.ContainsFunc(changed, func(p string) bool {
		return p == ".gitattributes" || strings.HasSuffix(p, "/.gitattributes")
	})
	changed = append(changed, bad...)
	if w.index != nil {
		w.index.touch(changed)
	}
	saved := func() error {
		if err := saving.waitWritten(); err != nil {
			return fmt.Errorf("update workspace %s: it shows %s, but its record could not be saved (after a restart it would show %s again; update it again once this is fixed): %w",
				name, spec.Commit, oldCommit, err)
		}
		return nil
	}
	return Switched{Changed: changed, Discarded: bad, Dirs: dirs, Release: oldRelease, Saved: saved}, nil
}

// metaSave is a write of meta.json under way (writeMeta), or done.
type metaSave struct {
	written chan struct{} // closed once the record's bytes are written, or the save ended
	done    chan struct{}
	err     error // set before done closes
	late    bool  // set before done closes: err came after the bytes were written
}

// saveMeta is writeMeta; tests make it fail.
var saveMeta = writeMeta

func startSave(dir string, m Meta) *metaSave {
	s := &metaSave{written: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	wrote := false
	mark := func() { once.Do(func() { close(s.written) }) }
	go func() {
		s.err = saveMeta(dir, m, func() { wrote = true; mark() })
		s.late = wrote && s.err != nil
		close(s.done)
		mark()
	}()
	return s
}

// lateErr waits for the write and returns its error if it came after
// the bytes were written: waitWritten (Switched.Saved) reported no other.
func (s *metaSave) lateErr() error {
	if s == nil || s.wait() == nil || !s.late {
		return nil
	}
	return s.err
}

// wait waits for the write, if any, and returns its error.
func (s *metaSave) wait() error {
	if s == nil {
		return nil
	}
	<-s.done
	return s.err
}

// waitWritten waits until the record's bytes are written (what fails
// when the disk is full), not for them to be durable: on a file system
// with a journal each sync is a journal commit (about 6 ms here, and
// as long as the host's writeback under load), and git checkout syncs
// nothing. A crash before they are durable finds the old record with
// the old git dir (UpdateGitDir waits for durability), as if the update
// had not been asked for; a failure after is UpdateGitDir's to report.
func (s *metaSave) waitWritten() error {
	if s == nil {
		return nil
	}
	<-s.written
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}
