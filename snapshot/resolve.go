package snapshot

import (
	"context"

	"github.com/gitfs/gitfs/mirror"
)

// Resolve turns rev into a commit id through m, except that a full commit
// id with a snapshot published under root from m's own repository is
// itself without asking the mirror (resolving one took three git
// processes, ~8 ms of every ws update given a commit id, as CI systems give
// them) — also one the mirror no longer knows (its branch was force-pushed
// away and the mirror collected it), since a snapshot holds everything
// needed to serve that commit. Any other error is m.Resolve's, unchanged
// (an unknown rev wraps mirror.ErrUnknownRev).
//
// Snapshots are kept by commit alone, whichever repository built them: a
// snapshot another repository published is no evidence that m has the
// commit, and taking it for one let any user who may read m open another,
// private repository's commit (and its packs, in a workspace's .git)
// through m by its id. Such a commit goes to m like any other rev.
//
// It takes the root rather than a Store so that callers that read no
// snapshot (rev-parse) need not open one; Store.Resolve is the same rule.
func Resolve(ctx context.Context, root string, m *mirror.Mirror, rev string) (string, error) {
	if publishedFrom(root, rev, m.Name) {
		return rev, nil
	}
	return m.Resolve(ctx, rev)
}

// Resolve is the package's Resolve with the store's root.
func (s *Store) Resolve(ctx context.Context, m *mirror.Mirror, rev string) (string, error) {
	return Resolve(ctx, s.root, m, rev)
}
