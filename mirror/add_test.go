package mirror

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestConcurrentAddsMakeOneMirror: concurrent adds through separate Sets (as separate
// processes) all succeed, one mirror results and no temp dir is left.
func TestConcurrentAddsMakeOneMirror(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "first", gittest.Generate(50, 3))
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				_, err = s.Add(context.Background(), "demo", repo.Dir)
			}
			errs[i] = err
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("add %d: %v", i, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "mirrors"))
	if len(entries) != 1 || entries[0].Name() != "demo.git" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("mirrors/ holds %v, want [demo.git]", names)
	}
	// Adding again with another URL is refused; the same URL is a no-op.
	s, _ := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := s.Add(context.Background(), "demo", t.TempDir()); err == nil {
		t.Error("adding demo again with another URL succeeded")
	}
}

func TestMirrorConfig(t *testing.T) {
	f := newFixture(t)
	for key, want := range map[string]string{
		"gc.auto":              "0",
		"transfer.fsckobjects": "true",
		"fetch.unpacklimit":    "1",
		"remote.origin.mirror": "true",
	} {
		if got := gittest.Git(t, f.dir(), "config", "--get", key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if out, _ := gittest.GitErr(f.dir(), "config", "--get-regexp", "lowspeed"); out != "" {
		t.Errorf("mirror sets a low-speed limit that would kill slow healthy fetches: %s", out)
	}
	// Fetches keep packs, even of a single new object.
	f.repo.Commit(t, "main", "one more", append(gittest.Generate(20, 1), gittest.File{Path: "new", Content: []byte("x")}))
	if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
		t.Fatal(err)
	}
	m, _ := f.set.Get(context.Background(), "demo")
	if loose, err := m.looseObjects(); err != nil || len(loose) > 0 {
		t.Errorf("fetch left %d loose objects (%v): it should keep packs", len(loose), err)
	}
}
