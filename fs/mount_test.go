//go:build linux

package fs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUnmountBusy: Unmount with a file still open neither hangs nor leaves
// a mount behind.
func TestUnmountBusy(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("busy")
	f, err := os.Open(filepath.Join(ws, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- e.fs.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("unmount: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Unmount hangs while a file is open")
	}
	if mounted(e.mnt) {
		t.Errorf("%s still mounted", e.mnt)
	}
}
