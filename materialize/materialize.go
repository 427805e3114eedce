// Package materialize writes a snapshot's tree to a real directory.
package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

// Options tune a checkout.
type Options struct {
	Workers  int       // parallel file writers
	Git      bool      // make DIR a git working tree at the commit
	Progress io.Writer // progress lines for long runs; nil for none
	// Finish, if set, runs on the finished tree before it is published
	// (ws export applies a workspace's changes here).
	Finish func(root *os.Root) error
}

// Stats counts what was written.
type Stats struct {
	Files int64
	Bytes int64
}

// Checkout writes snap's tree into dir, which must be absent or empty.
// Sequential placeholder: the parallel, hardened writer replaces it.
func Checkout(ctx context.Context, snap *snapshot.Snapshot, dir string, opts Options) (Stats, error) {
	var stats Stats
	dir, err := filepath.Abs(dir)
	if err != nil {
		return stats, err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return stats, fmt.Errorf("%s: directory is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return stats, err
	}
	locks.CleanStale(dir)
	tmp, err := locks.TempDir(dir)
	if err != nil {
		return stats, err
	}
	defer os.RemoveAll(tmp)
	var walk func(id snapshot.ID, rel string) error
	walk = func(id snapshot.ID, rel string) error {
		entries, err := snap.Tree(id)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Name == "." || e.Name == ".." || e.Name == ".git" {
				return fmt.Errorf("%s: refused name", filepath.Join(rel, e.Name))
			}
			p := filepath.Join(tmp, rel, e.Name)
			switch e.Kind {
			case snapshot.Dir, snapshot.Gitlink:
				if err := os.Mkdir(p, 0o755); err != nil {
					return err
				}
				if e.Kind == snapshot.Dir {
					if err := walk(e.ID, filepath.Join(rel, e.Name)); err != nil {
						return err
					}
				}
			case snapshot.Symlink:
				target, err := snap.ReadLink(e.ID)
				if err != nil {
					return err
				}
				if err := os.Symlink(target, p); err != nil {
					return err
				}
			default:
				mode := os.FileMode(0o644)
				if e.Kind == snapshot.Executable {
					mode = 0o755
				}
				r, _, err := snap.Stream(e.ID)
				if err != nil {
					return err
				}
				f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
				if err != nil {
					r.Close()
					return err
				}
				n, err := io.Copy(f, r)
				r.Close()
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				stats.Files++
				stats.Bytes += n
			}
		}
		return nil
	}
	if err := walk(snap.Root(), ""); err != nil {
		return stats, err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stats, err
	}
	return stats, locks.Publish(tmp, dir)
}
