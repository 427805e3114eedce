package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
)

// Housekeeping for gc: when each snapshot was last used, and pruning what
// outlives the snapshots it was for (lock files, verified-pack markers).
// None of it can break a snapshot: a lease or build in progress holds its
// lock file (and locks.RemoveUnheld removes only unheld ones); a missing
// marker only makes the next open verify its pack again.

// touchLease records that commit's snapshot is being used: LastUsed reads
// the lease file's mtime. Best effort (a read-only root loses nothing but
// the age).
func (s *Store) touchLease(commit string) {
	now := time.Now()
	os.Chtimes(s.leasePath(commit), now, now)
}

// LastUsed is when commit's snapshot was last leased (opened by a
// checkout, a workspace, a browse path or an export) or published,
// whichever is later; zero if it is not published.
func (s *Store) LastUsed(commit string) time.Time {
	fi, err := os.Stat(filepath.Join(s.snapDir(commit), "meta.json"))
	if err != nil {
		return time.Time{}
	}
	t := fi.ModTime()
	if lf, err := os.Stat(s.leasePath(commit)); err == nil && lf.ModTime().After(t) {
		t = lf.ModTime()
	}
	return t
}

// UsedSince returns the published snapshots last used (LastUsed) after t:
// gc --snapshot-ttl keeps them.
func (s *Store) UsedSince(t time.Time) (map[string]bool, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("snapshots: %w", err)
	}
	out := map[string]bool{}
	for _, e := range entries {
		if mirror.IsFullSHA(e.Name()) && s.LastUsed(e.Name()).After(t) {
			out[e.Name()] = true
		}
	}
	return out, nil
}

// PruneVerified removes the verified-pack markers that no published
// snapshot's pack matches (name and size), and returns how many it
// removed.
func (s *Store) PruneVerified() (int, error) {
	live := map[string]bool{}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, fmt.Errorf("snapshots: %w", err)
	}
	for _, e := range entries {
		if !mirror.IsFullSHA(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var m Meta
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		for _, p := range m.Packs {
			if fi, err := os.Stat(filepath.Join(s.dir, e.Name(), "objects", "pack", p+".pack")); err == nil {
				live[fmt.Sprintf("%s-%d", p, fi.Size())] = true
			}
		}
	}
	markers, err := os.ReadDir(s.verifiedDir())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("verified packs: %w", err)
	}
	n := 0
	for _, m := range markers {
		if live[m.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(s.verifiedDir(), m.Name())); err == nil {
			n++
		}
	}
	return n, nil
}

// PruneLocks removes the lock files (lease, build, contents) of snapshots
// that are not published, untouched for minAge and held by no one, and
// returns how many it removed. A commit being built holds its lease and
// build locks, so its files stay.
func (s *Store) PruneLocks(minAge time.Duration) (int, error) {
	entries, err := os.ReadDir(s.lockDir)
	if err != nil {
		return 0, fmt.Errorf("locks: %w", err)
	}
	n := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "snapshot-")
		if !ok {
			continue
		}
		commit, kind, ok := strings.Cut(rest, ".")
		if !ok || !mirror.IsFullSHA(commit) || (kind != "lease" && kind != "build" && kind != "contents") || s.Has(commit) {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < minAge {
			continue
		}
		removed, err := locks.RemoveUnheld(filepath.Join(s.lockDir, e.Name()))
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}
