package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

func setup(t *testing.T, files []gittest.File) (*snapshot.Store, *mirror.Set, string, string) {
	t.Helper()
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "first", files)
	root := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Add(context.Background(), "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, log, snapshot.Options{MemBlobMax: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return st, ms, root, commit
}

func TestReadBack(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 10000)
	files := []gittest.File{
		{Path: "a.txt", Content: []byte("hello\n")},
		{Path: "bin/run", Content: []byte("#!/bin/sh\n"), Mode: "100755"},
		{Path: "link", Content: []byte("a.txt"), Mode: "120000"},
		{Path: "deep/x/y/z.txt", Content: []byte("z")},
		{Path: "big.bin", Content: big},
		{Path: "empty", Content: nil},
	}
	st, _, _, commit := setup(t, files)
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if snap.Meta().Files != len(files) {
		t.Errorf("files = %d, want %d", snap.Meta().Files, len(files))
	}
	tests := []struct {
		path string
		kind snapshot.Kind
		want []byte
	}{
		{"a.txt", snapshot.File, []byte("hello\n")},
		{"bin/run", snapshot.Executable, []byte("#!/bin/sh\n")},
		{"link", snapshot.Symlink, []byte("a.txt")},
		{"deep/x/y/z.txt", snapshot.File, []byte("z")},
		{"big.bin", snapshot.File, big},
		{"empty", snapshot.File, []byte{}},
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tc := range tests {
				e, err := snap.Lookup(tc.path)
				if err != nil {
					t.Errorf("lookup %s: %v", tc.path, err)
					return
				}
				if e.Kind != tc.kind {
					t.Errorf("%s: kind %v, want %v", tc.path, e.Kind, tc.kind)
				}
				n, err := snap.Size(e.ID)
				if err != nil || n != int64(len(tc.want)) {
					t.Errorf("%s: size %d, %v; want %d", tc.path, n, err, len(tc.want))
				}
				b, err := snap.Open(e.ID)
				if err != nil {
					t.Errorf("open %s: %v", tc.path, err)
					return
				}
				got := make([]byte, b.Size())
				if _, err := b.ReadAt(got, 0); err != nil && err != io.EOF {
					t.Errorf("read %s: %v", tc.path, err)
				}
				b.Close()
				if !bytes.Equal(got, tc.want) {
					t.Errorf("%s: content differs", tc.path)
				}
				r, _, err := snap.Stream(e.ID)
				if err != nil {
					t.Errorf("stream %s: %v", tc.path, err)
					return
				}
				got, _ = io.ReadAll(r)
				r.Close()
				if !bytes.Equal(got, tc.want) {
					t.Errorf("%s: streamed content differs", tc.path)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := snap.Lookup("nope"); err == nil {
		t.Error("lookup of a missing path succeeded")
	}
}

func TestGCRespectsLeases(t *testing.T) {
	st, _, root, commit := setup(t, []gittest.File{{Path: "a", Content: []byte("a")}})
	_, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := st.GC(context.Background(), nil)
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc with a lease removed %v, %v", removed, err)
	}
	release()
	removed, err = st.GC(context.Background(), map[string]bool{commit: true})
	if err != nil || len(removed) != 0 {
		t.Fatalf("gc with keep removed %v, %v", removed, err)
	}
	removed, err = st.GC(context.Background(), nil)
	if err != nil || len(removed) != 1 {
		t.Fatalf("gc removed %v, %v; want the snapshot", removed, err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", commit)); !os.IsNotExist(err) {
		t.Fatalf("snapshot dir still there: %v", err)
	}
}
