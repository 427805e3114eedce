// Package housekeeping keeps a root's disk in check: gc (snapshots no one
// has used for a while, lock files and markers of what is gone, broken
// mirror copies, git's own gc of each mirror) and df (what uses the disk,
// by part). `gitfs gc` runs GC once, `gitfs serve --gc-interval` on a
// timer; neither ever removes a snapshot that a lease, a workspace or a
// checkout --git holds (snapshot.Store.GC's rules).
package housekeeping

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Options say what GC removes.
type Options struct {
	// SnapshotTTL keeps snapshots used (leased) within it; 0 removes
	// every snapshot that nothing holds.
	SnapshotTTL time.Duration
	// BrokenTTL is how long broken mirror copies, moved aside by a
	// repair, are kept for inspection (default DefaultBrokenTTL).
	BrokenTTL time.Duration
	// LockAge is how long a lock file of something gone stays (default
	// DefaultLockAge); only unheld ones are removed, whatever their age.
	LockAge time.Duration
	// DropContents also removes kept snapshots' inflated contents files.
	DropContents bool
	// NoMirrorGC skips git gc of the mirrors.
	NoMirrorGC bool
	// Progress gets one line per mirror collected; nil: none.
	Progress io.Writer
	Log      *slog.Logger
}

// Defaults of Options.
const (
	DefaultBrokenTTL = 7 * 24 * time.Hour
	DefaultLockAge   = time.Hour
)

// Report is what GC removed.
type Report struct {
	Snapshots     []string `json:"snapshots"`      // commits whose snapshots were removed
	ContentsFreed int64    `json:"contents_freed"` // bytes of contents files removed
	Locks         int      `json:"locks"`          // lock files removed
	Markers       int      `json:"markers"`        // verified-pack markers removed
	Broken        []string `json:"broken"`         // broken mirror copies removed
	Mirrors       int      `json:"mirrors"`        // mirrors git gc ran on
}

// GC removes what nothing needs any more under root (see Options).
func GC(ctx context.Context, root string, ms *mirror.Set, st *snapshot.Store, opts Options) (Report, error) {
	if opts.BrokenTTL <= 0 {
		opts.BrokenTTL = DefaultBrokenTTL
	}
	if opts.LockAge <= 0 {
		opts.LockAge = DefaultLockAge
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var r Report
	keep, err := workspace.Commits(root)
	if err != nil {
		return r, err
	}
	if opts.SnapshotTTL > 0 {
		recent, err := st.UsedSince(time.Now().Add(-opts.SnapshotTTL))
		if err != nil {
			return r, err
		}
		for c := range recent {
			keep[c] = true
		}
	}
	if r.Snapshots, err = st.GC(ctx, keep); err != nil {
		return r, err
	}
	if opts.DropContents {
		if r.ContentsFreed, err = st.DropContents(); err != nil {
			return r, err
		}
	}
	// Markers and locks of snapshots just removed go too.
	if r.Markers, err = st.PruneVerified(); err != nil {
		return r, err
	}
	if r.Locks, err = st.PruneLocks(opts.LockAge); err != nil {
		return r, err
	}
	ms.CleanStale()
	if r.Broken, err = ms.PruneBroken(opts.BrokenTTL); err != nil {
		return r, err
	}
	n, err := ms.PruneLocks(opts.LockAge)
	r.Locks += n
	if err != nil {
		return r, err
	}
	if opts.NoMirrorGC {
		return r, nil
	}
	infos, err := ms.List(ctx)
	if err != nil {
		return r, err
	}
	for i, in := range infos {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "\rgitfs gc: git gc of mirror %s (%d/%d)\x1b[K", in.Name, i+1, len(infos))
		}
		if err := ms.GC(ctx, in.Name); err != nil {
			if opts.Progress != nil {
				fmt.Fprintln(opts.Progress)
			}
			return r, err
		}
		r.Mirrors++
	}
	if opts.Progress != nil && len(infos) > 0 {
		fmt.Fprintf(opts.Progress, "\rgitfs gc: git gc of %d mirror(s), done\x1b[K\n", len(infos))
	}
	return r, nil
}
