package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitfs/gitfs/locks"
)

// Removing a mirror, and pruning what mirrors leave behind: broken copies
// moved aside by a repair, the leftovers of an interrupted removal, and
// the lock files of mirrors that are gone.

// brokenTimeLayout is how repairLocked names a broken copy: NAME.broken-TIME.
const brokenTimeLayout = "20060102T150405.000000000"

// removingMarker names a mirror being removed: .NAME.removing-RANDOM.
const removingMarker = ".removing-"

// Remove deletes the mirror NAME, its broken copies and its access record.
// Snapshots made from it keep working (their packs are hard links); gc
// drops them once unused. It holds the mirror and objects locks, so no
// fetch, repair or pinning runs meanwhile, and renames the mirror away
// first, so that no one opens a half-deleted one.
func (s *Set) Remove(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	lock, err := locks.Exclusive(ctx, s.lockPath(name))
	if err != nil {
		return err
	}
	defer lock.Unlock()
	olock, err := locks.Exclusive(ctx, s.objectsLockPath(name))
	if err != nil {
		return err
	}
	defer olock.Unlock()
	dir := s.mirrorDir(name)
	if _, err := os.Lstat(dir); err != nil {
		return notFound(name)
	}
	trash, err := os.MkdirTemp(s.dir, "."+name+removingMarker)
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, "mirror.git")); err != nil {
		os.Remove(trash)
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := os.Remove(s.accessPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("mirror removed but not its access record", "repo", name, "err", err)
	}
	broken, _ := filepath.Glob(filepath.Join(s.dir, name+".broken-*"))
	for _, b := range broken {
		os.RemoveAll(b)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove %s: %w (gc removes the rest)", name, err)
	}
	return nil
}

// PruneBroken removes broken copies that repairs moved aside (kept for
// inspection) once older than maxAge, and what interrupted removals left;
// it returns the paths removed.
func (s *Set) PruneBroken(maxAge time.Duration) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("mirrors: %w", err)
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(s.dir, name)
		if strings.HasPrefix(name, ".") && strings.Contains(name, removingMarker) {
			// A removal holds the mirror lock while deleting: leave a
			// live one to finish.
			repo := strings.SplitN(strings.TrimPrefix(name, "."), removingMarker, 2)[0]
			if ValidateName(repo) == nil {
				if l, err := locks.TryExclusive(s.lockPath(repo)); err == nil {
					os.RemoveAll(p)
					l.Unlock()
					removed = append(removed, p)
				}
			}
			continue
		}
		_, stamp, ok := strings.Cut(name, ".broken-")
		if !ok {
			continue
		}
		t, err := time.Parse(brokenTimeLayout, stamp)
		if err != nil || time.Since(t) < maxAge {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return removed, fmt.Errorf("remove broken copy %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// PruneLocks removes the lock files of mirrors that no longer exist,
// untouched for minAge and held by no one, and returns how many.
func (s *Set) PruneLocks(minAge time.Duration) (int, error) {
	entries, err := os.ReadDir(s.lockDir)
	if err != nil {
		return 0, fmt.Errorf("locks: %w", err)
	}
	n := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "mirror-")
		if !ok {
			continue
		}
		name, ok := strings.CutSuffix(rest, ".objects.lock")
		if !ok {
			name, ok = strings.CutSuffix(rest, ".lock")
		}
		if !ok || ValidateName(name) != nil {
			continue
		}
		if _, err := os.Lstat(s.mirrorDir(name)); err == nil {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < minAge {
			continue
		}
		ok, err = locks.RemoveUnheld(filepath.Join(s.lockDir, e.Name()))
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}
