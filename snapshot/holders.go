package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A holder is a directory outside the store that keeps using a snapshot
// after the process that made it exits: a `checkout --git` whose
// .git/objects/info/alternates names the snapshot's objects. gc keeps a
// snapshot while any holder still names it, as long-lived leases.

func (s *Store) holdersDir(commit string) string {
	return filepath.Join(s.dir, ".holders", commit)
}

// AddHolder records that dir depends on the snapshot of commit through its
// git alternates, so gc keeps the snapshot while that stays true.
func (s *Store) AddHolder(commit, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	hd := s.holdersDir(commit)
	if err := os.MkdirAll(hd, 0o755); err != nil {
		return fmt.Errorf("snapshot %s: record holder: %w", commit, err)
	}
	sum := sha256.Sum256([]byte(abs))
	name := filepath.Join(hd, hex.EncodeToString(sum[:8]))
	if err := os.WriteFile(name+".tmp", []byte(abs), 0o644); err != nil {
		return fmt.Errorf("snapshot %s: record holder: %w", commit, err)
	}
	return os.Rename(name+".tmp", name)
}

// held reports whether some recorded holder still uses the snapshot of
// commit; holders that no longer do are forgotten.
func (s *Store) held(commit string) bool {
	hd := s.holdersDir(commit)
	entries, err := os.ReadDir(hd)
	if err != nil {
		return false
	}
	objects := filepath.Join(s.snapDir(commit), "objects")
	held := false
	for _, e := range entries {
		p := filepath.Join(hd, e.Name())
		dir, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		alt, err := os.ReadFile(filepath.Join(string(dir), ".git", "objects", "info", "alternates"))
		if err == nil && strings.Contains(string(alt), objects) {
			held = true
			continue
		}
		os.Remove(p)
	}
	if !held {
		os.Remove(hd)
	}
	return held
}
