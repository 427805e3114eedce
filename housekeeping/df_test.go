package housekeeping_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitfs/gitfs/housekeeping"
)

// TestDiskUsage: each part is measured, a snapshot's packs (hard links to
// the mirror's) are counted once, with the mirror, and shown as shared.
func TestDiskUsage(t *testing.T) {
	h := newHost(t)
	ws := filepath.Join(h.root, "workspaces", "w", "upper")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "big"), make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := housekeeping.DiskUsage(h.root)
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]housekeeping.Part{}
	var sum int64
	for _, p := range u.Parts {
		parts[p.Name] = p
		sum += p.Bytes
	}
	if sum != u.Total {
		t.Errorf("total %d, parts add up to %d", u.Total, sum)
	}
	m := parts["mirrors"]
	if m.Bytes == 0 || len(m.Items) != 1 || m.Items[0].Name != "demo" {
		t.Errorf("mirrors: %+v", m)
	}
	s := parts["snapshots"]
	if len(s.Items) != 4 || s.Shared == 0 {
		t.Errorf("snapshots: %+v (want 4, with packs shared with the mirror)", s)
	}
	if w := parts["workspaces"]; w.Bytes < 1<<20 || len(w.Items) != 1 {
		t.Errorf("workspaces: %+v", w)
	}
	if u.SizeBytes == 0 {
		t.Error("no file system size")
	}
}
