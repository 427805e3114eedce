package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// The per-commit contents file (ROOT/snapshots/COMMIT/contents, every
// blob of one commit inflated into one file) is gone: the blob store
// (fill.go) holds each blob once for all commits. Measured on the CI flow
// (a job at A, the next at B with 1% of the files changed), the contents
// file made B inflate all of its blobs again and cost a tree's size of
// disk per commit. What callers used of it stays, on the store:

// ErrNoContents is what Contents answers: there are no contents files.
var ErrNoContents = errors.New("snapshot contents not inflated")

// ErrContentsBusy is kept for callers of Inflate; it is never returned.
var ErrContentsBusy = errors.New("snapshot contents being inflated by another process")

// InflateOptions tune Inflate (Fill).
type InflateOptions struct {
	Workers  int
	Progress *atomic.Int64
	Early    bool // unused: a filled blob is readable as soon as it is published
}

// Contents is what Inflate returns; Close releases nothing.
type Contents struct{}

// Close does nothing.
func (*Contents) Close() error { return nil }

// Contents answers ErrNoContents: callers Inflate, which is cheap once the
// store has every blob.
func (s *Snapshot) Contents() (*Contents, error) { return nil, ErrNoContents }

// Inflate is Fill.
func (s *Snapshot) Inflate(ctx context.Context, opts InflateOptions) (*Contents, error) {
	if _, err := s.Fill(ctx, FillOptions{Workers: opts.Workers, Progress: opts.Progress}); err != nil {
		return nil, err
	}
	return &Contents{}, nil
}

// DropContents removes the contents files older versions left in
// snapshots, returning the bytes freed.
func (s *Store) DropContents() (int64, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	var freed int64
	for _, e := range entries {
		if !mirror.IsFullSHA(e.Name()) {
			continue
		}
		dir := s.snapDir(e.Name())
		old, _ := filepath.Glob(filepath.Join(dir, "contents"+locks.TempMarker+"*"))
		for _, p := range append(old, filepath.Join(dir, "contents")) {
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			if err := os.Remove(p); err != nil {
				return freed, fmt.Errorf("snapshot %s: drop contents: %w", e.Name(), err)
			}
			freed += fi.Size()
		}
	}
	return freed, nil
}
