package snapshot

import (
	"context"

	"github.com/gitfs/gitfs/mirror"
)

// Resolve turns rev into a commit id through m, except that a full commit
// id with a snapshot published under root is itself without asking the
// mirror (resolving one took three git processes, ~8 ms of every ws
// update given a commit id, as CI systems give them) — also one the mirror
// no longer knows (its branch was force-pushed away and the mirror
// collected it), since a snapshot holds everything needed to serve that
// commit. Any other error is m.Resolve's, unchanged (an unknown rev wraps
// mirror.ErrUnknownRev).
//
// It takes the root rather than a Store so that callers that read no
// snapshot (rev-parse) need not open one; Store.Resolve is the same rule.
func Resolve(ctx context.Context, root string, m *mirror.Mirror, rev string) (string, error) {
	if Published(root, rev) {
		return rev, nil
	}
	return m.Resolve(ctx, rev)
}

// Resolve is the package's Resolve with the store's root.
func (s *Store) Resolve(ctx context.Context, m *mirror.Mirror, rev string) (string, error) {
	return Resolve(ctx, s.root, m, rev)
}
