package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitfs/gitfs/locks"
)

// PinPacks makes dstPackDir hold every object of the mirror in pack form:
// loose objects (from merges) are packed into a new pack written straight into
// dstPackDir, and every complete mirror pack is hard-linked there. Nothing in
// the mirror is changed. Because packs are hard links, a later gc or fetch of
// the mirror can never take objects away from what was pinned.
func (m *Mirror) PinPacks(ctx context.Context, dstPackDir string) ([]string, error) {
	lock, err := locks.Shared(ctx, m.set.objectsLockPath(m.Name))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := os.MkdirAll(dstPackDir, 0o755); err != nil {
		return nil, fmt.Errorf("pin %s: %w", m.Name, err)
	}
	loose, err := m.looseObjects()
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", m.Name, err)
	}
	if len(loose) > 0 {
		in := []byte(strings.Join(loose, "\n") + "\n")
		if _, err := (gitCmd{dir: m.Dir, args: []string{"pack-objects", "-q", filepath.Join(dstPackDir, "pack")}, stdin: in}).run(ctx); err != nil {
			return nil, fmt.Errorf("pin %s: pack loose objects: %w", m.Name, err)
		}
	}
	srcDir := filepath.Join(m.Dir, "objects", "pack")
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return nil, fmt.Errorf("pin %s: %w", m.Name, err)
	}
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".idx")
		if !ok || !strings.HasPrefix(base, "pack-") {
			continue
		}
		// Link the pack before its index: an index without its pack would
		// be a lie, a pack without an index is ignored.
		for _, ext := range []string{".pack", ".idx"} {
			err := os.Link(filepath.Join(srcDir, base+ext), filepath.Join(dstPackDir, base+ext))
			if err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("pin %s: link %s: %w", m.Name, base+ext, err)
			}
		}
	}
	var packs []string
	entries, err = os.ReadDir(dstPackDir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".pack"); ok {
			packs = append(packs, base)
		}
	}
	return packs, nil
}

// looseObjects lists the ids of loose objects in the mirror.
func (m *Mirror) looseObjects() ([]string, error) {
	objDir := filepath.Join(m.Dir, "objects")
	fans, err := os.ReadDir(objDir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range fans {
		if len(f.Name()) != 2 || !f.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(objDir, f.Name()))
		if err != nil {
			return nil, err
		}
		for _, o := range files {
			if len(o.Name()) == 38 && !strings.Contains(o.Name(), ".") {
				ids = append(ids, f.Name()+o.Name())
			}
		}
	}
	return ids, nil
}

// GC lets git collect garbage in the mirror. It holds the mirror lock (no
// fetch runs) and the objects lock (no snapshot is linking packs); snapshots
// keep the packs they pinned through their hard links.
func (s *Set) GC(ctx context.Context, name string) error {
	m, err := s.Get(ctx, name)
	if err != nil {
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
	removeStaleGitLocks(m.Dir)
	if _, err := (gitCmd{dir: m.Dir, args: []string{"gc", "--quiet"}}).run(ctx); err != nil {
		return fmt.Errorf("gc %s: %w", name, err)
	}
	return nil
}
