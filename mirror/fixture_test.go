package mirror

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

type fixture struct {
	repo   *gittest.Repo
	root   string
	set    *Set
	log    *syncBuffer
	commit string // main
}

// newFixture makes a remote with main and tag v1, and a mirror "demo" of it
// under a fresh root.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{repo: gittest.NewRepo(t), root: t.TempDir(), log: &syncBuffer{}}
	f.commit = f.repo.Commit(t, "main", "first", gittest.Generate(20, 1))
	gittest.Git(t, f.repo.Dir, "tag", "v1")
	f.set = f.newSet(t)
	if _, err := f.set.Add(context.Background(), "demo", f.repo.Dir); err != nil {
		t.Fatal(err)
	}
	return f
}

// newSet opens the root again, as another process would.
func (f *fixture) newSet(t *testing.T) *Set {
	t.Helper()
	s, err := Open(f.root, slog.New(slog.NewTextHandler(f.log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) dir() string { return filepath.Join(f.root, "mirrors", "demo.git") }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = fh.WriteString(s)
	must(t, err)
	must(t, fh.Close())
}

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}
