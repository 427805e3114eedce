package mirror

import (
	"fmt"
	"os"
)

// Lookup returns the mirror NAME without the health check Get runs, for hot
// read-only paths (resolving refs for browse paths) that must stay cheap.
// Writers and snapshot builds use Get.
func (s *Set) Lookup(name string) (*Mirror, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	m := &Mirror{Name: name, Dir: s.mirrorDir(name), set: s}
	if _, err := os.Stat(m.Dir); err != nil {
		return nil, fmt.Errorf("repository %q: %w", name, ErrNotFound)
	}
	return m, nil
}
