package snapshot

import (
	"context"
	"errors"

	"github.com/gitfs/gitfs/mirror"
)

// Resolve turns rev into a commit id through m, except that a full commit
// id with a snapshot published under root resolves to itself without
// asking the mirror, also one the mirror no longer knows (its branch was
// force-pushed away and the mirror collected it), since a snapshot holds
// everything needed to serve that commit. Any other error is m.Resolve's, unchanged (an
// unknown rev wraps mirror.ErrUnknownRev).
//
// It takes the root rather than a Store so that callers that read no
// snapshot (rev-parse) need not open one; Store.Resolve is the same rule.
func Resolve(ctx context.Context, root string, m *mirror.Mirror, rev string) (string, error) {
	// A full id with a published snapshot is a commit: no git needed
	// (resolving one took three git processes, ~8 ms of every ws update
	// given a commit id, as CI systems give them).
	if Published(root, rev) {
		return rev, nil
	}
	commit, err := m.Resolve(ctx, rev)
	if errors.Is(err, mirror.ErrUnknownRev) && Published(root, rev) {
		return rev, nil
	}
	return commit, err
}

// Resolve is the package's Resolve with the store's root.
func (s *Store) Resolve(ctx context.Context, m *mirror.Mirror, rev string) (string, error) {
	return Resolve(ctx, s.root, m, rev)
}
