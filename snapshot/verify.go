package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitfs/gitfs/internal/pack"
)

// Build-time verification: what a snapshot must pass before it is
// published (invariant 4: nothing unverified is published or reused).

// verify checks, without inflating any blob, that the commit and every tree
// it reaches parse and pass the tree rules (readTree: names, order,
// duplicates, entries per tree), that no path is nested deeper than
// MaxDepth, that every blob it names is in the pinned packs, and that each
// pack's trailing checksum is right (once per pack, ever). A refusal names
// the entry's path (its first path, for a tree reached by several).
func (s *Store) verify(ctx context.Context, packDir string, packs []string, commit string) (Meta, error) {
	sort.Strings(packs)
	for _, p := range packs {
		if err := s.verifyPack(packDir, p); err != nil {
			return Meta{}, err
		}
	}
	ps, err := pack.OpenSet(packDir, packs)
	if err != nil {
		return Meta{}, err
	}
	defer ps.Close()
	c, err := readCommit(ps, plumbing.NewHash(commit))
	if err != nil {
		return Meta{}, err
	}
	meta := Meta{Commit: commit, Tree: c.tree.String(), CommitTime: c.committed, Packs: packs}
	w := &verifyWalk{ctx: ctx, snap: &Snapshot{packs: ps, store: s}, meta: &meta, trees: make(map[ID]*treeDepth)}
	if _, err := w.walk(c.tree, "", 1); err != nil {
		return Meta{}, err
	}
	return meta, nil
}

// verifyWalk visits each distinct tree of a commit once. Depth is checked
// without expanding repeated subtrees: each tree remembers how many levels
// of entries it holds, so a tree first met shallow and met again deep is
// measured again at no cost.
type verifyWalk struct {
	ctx   context.Context
	snap  *Snapshot
	meta  *Meta
	trees map[ID]*treeDepth
}

// treeDepth is what the walk keeps of a finished tree: its levels of
// entries (0 if empty, 1 with no subdirectory) and the first entry on a
// deepest chain (name, and the subtree it leads to unless it is the last).
type treeDepth struct {
	levels int
	name   string
	child  ID
	done   bool
}

// walk verifies tree id found at dir (its path, "" for the root), whose
// entries are depth levels deep (the root's are 1), and returns its levels.
func (w *verifyWalk) walk(id ID, dir string, depth int) (int, error) {
	if t := w.trees[id]; t != nil {
		if !t.done {
			// Object ids make a cycle impossible; refuse rather than loop.
			return 0, &RefusedError{Path: dir, Rule: "tree contains itself"}
		}
		if depth-1+t.levels > MaxDepth {
			return 0, &RefusedError{Path: w.deepest(id, dir, depth), Rule: fmt.Sprintf(RuleDepth, MaxDepth)}
		}
		return t.levels, nil
	}
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	entries, err := w.snap.readTree(id)
	if re := (*RefusedError)(nil); errors.As(err, &re) {
		return 0, re.Under(dir)
	}
	if err != nil && dir != "" {
		return 0, fmt.Errorf("path %q: %w", dir, err)
	}
	if err != nil {
		return 0, err
	}
	if len(entries) > 0 && depth > MaxDepth {
		return 0, &RefusedError{Path: joinPath(dir, entries[0].Name), Rule: fmt.Sprintf(RuleDepth, MaxDepth)}
	}
	t := &treeDepth{}
	w.trees[id] = t
	w.meta.Trees++
	if len(entries) > 0 {
		t.levels, t.name = 1, entries[0].Name
	}
	for _, e := range entries {
		switch e.Kind {
		case Dir:
			levels, err := w.walk(e.ID, joinPath(dir, e.Name), depth+1)
			if err != nil {
				return 0, err
			}
			if levels+1 > t.levels {
				t.levels, t.name, t.child = levels+1, e.Name, e.ID
			}
		case Gitlink:
		default:
			w.meta.Files++
			if !w.snap.packs.Has(e.ID) {
				return 0, fmt.Errorf("blob %s (%s) missing from pinned packs", e.ID, joinPath(dir, e.Name))
			}
		}
	}
	t.done = true
	return t.levels, nil
}

// deepest is the path of the first entry deeper than MaxDepth on the
// deepest chain of finished tree id, met at dir with entries depth deep.
func (w *verifyWalk) deepest(id ID, dir string, depth int) string {
	p := dir
	for t := w.trees[id]; t != nil; t = w.trees[t.child] {
		p = joinPath(p, t.name)
		if depth > MaxDepth || t.child.IsZero() {
			break
		}
		depth++
	}
	return p
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// verifyPack checks pack name in full (internal/pack's Verify: the SHA-1
// of the whole pack against its trailer and its index) unless a marker
// says it was, at its current size: a pack's name is its checksum, so it
// never needs checking twice.
func (s *Store) verifyPack(packDir, name string) error {
	path := filepath.Join(packDir, name+".pack")
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return corruptf("%s.pack is missing", name)
	}
	if err != nil {
		return err
	}
	marker := filepath.Join(s.verifiedDir(), fmt.Sprintf("%s-%d", name, st.Size()))
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	if err := pack.Verify(filepath.Join(packDir, name)); err != nil {
		return err
	}
	// Only a cache: failing to remember costs a re-check, nothing more.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		s.log.Debug("cannot remember a verified pack", "pack", name, "err", err)
	}
	return nil
}
