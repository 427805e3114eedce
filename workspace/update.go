//go:build linux

package workspace

import (
	"fmt"
	"sort"
	"strings"

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
	mb := make(map[string]snapshot.Entry, len(eb))
	for _, e := range eb {
		mb[e.Name] = e
	}
	seen := make(map[string]bool, len(ea))
	for _, x := range ea {
		seen[x.Name] = true
		p := join(prefix, x.Name)
		y, ok := mb[x.Name]
		switch {
		case !ok:
			*out = append(*out, p)
		case x.Kind == snapshot.Dir && y.Kind == snapshot.Dir:
			if err := diffTrees(sa, sb, x.ID, y.ID, p, out); err != nil {
				return err
			}
		case x.Kind != y.Kind || x.ID != y.ID:
			*out = append(*out, p)
		}
	}
	for _, y := range eb {
		if !seen[y.Name] {
			*out = append(*out, join(prefix, y.Name))
		}
	}
	return nil
}

func under(p, dir string) bool { return strings.HasPrefix(p, dir+"/") }

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

// Switch moves the workspace to newSnap (spec.Commit's) atomically on disk:
// local changes are kept; if one touches a path that changed between the
// old and the new commit, the switch is refused with a *ConflictError
// naming the paths unless discardChanges, which drops those local changes
// first. It returns the paths whose content changed (for the caller to
// invalidate) and the old snapshot's release, which the caller calls once
// nothing reads the old snapshot any more. On error the workspace is as it
// was and newRelease is the caller's.
func (w *Workspace) Switch(spec Spec, newSnap *snapshot.Snapshot, newRelease func(), discardChanges bool) (changed []string, oldRelease func(), err error) {
	name := w.meta.Name
	if !IsCommitID(spec.Commit) || newSnap.Commit() != spec.Commit {
		return nil, nil, fmt.Errorf("update workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	if spec.Repo != "" && spec.Repo != w.meta.Repo {
		return nil, nil, fmt.Errorf("update workspace %s: it shows %s, not %s", name, w.meta.Repo, spec.Repo)
	}
	if err := diffTrees(w.snap, newSnap, w.snap.Root(), newSnap.Root(), "", &changed); err != nil {
		return nil, nil, fmt.Errorf("update workspace %s: compare commits: %w", name, err)
	}
	local, err := w.localChanges()
	if err != nil {
		return nil, nil, fmt.Errorf("update workspace %s: %w", name, err)
	}
	bad := conflicts(changed, local)
	if len(bad) > 0 && !discardChanges {
		return nil, nil, &ConflictError{Workspace: name, Paths: bad}
	}
	for _, p := range bad {
		if err := w.layer.RemoveUpper(p); err != nil {
			return nil, nil, fmt.Errorf("update workspace %s: discard %s: %w", name, p, err)
		}
	}
	m := w.meta
	m.Commit = spec.Commit
	if spec.Rev != "" {
		m.Rev = spec.Rev
	}
	if spec.MergeInto != "" {
		m.MergeInto = spec.MergeInto
	}
	m.Base = spec.Base
	if err := writeMeta(w.dir, m); err != nil {
		return nil, nil, fmt.Errorf("update workspace %s: %w", name, err)
	}
	oldRelease = w.release
	w.meta, w.snap, w.release = m, newSnap, newRelease
	return append(changed, bad...), oldRelease, nil
}
