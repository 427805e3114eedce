package snapshot_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/snapshot"
)

// TestReadBack: every kind of entry is found by Lookup and reads back as
// committed through Size, Open (from memory, and from ROOT/blobs for the
// blob over MemBlobMax) and Stream, from 8 goroutines at once.
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

// TestStreamMatchesContent reads every blob of a tree through Stream, the
// checkout read path (plain and deltified objects, a multi-MiB blob, an
// empty one), from several goroutines, and compares with what was
// committed.
func TestStreamMatchesContent(t *testing.T) {
	files := gittest.Generate(300, 7)
	// Versions of one file with small edits: git packs them as delta chains.
	base := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 1500)
	for i := 0; i < 40; i++ {
		v := append([]byte(nil), base...)
		copy(v[i*1000:], fmt.Sprintf("edit %d", i))
		v = append(v, fmt.Sprintf("tail %d\n", i)...)
		files = append(files, gittest.File{Path: fmt.Sprintf("versions/v%02d.txt", i), Content: v})
	}
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	files = append(files, gittest.File{Path: "big.bin", Content: big}, gittest.File{Path: "empty", Content: nil})

	st, _, root, commit := setup(t, files)
	packs, _ := filepath.Glob(filepath.Join(root, "mirrors", "demo.git", "objects", "pack", "*.idx"))
	out, err := exec.Command("git", append([]string{"verify-pack", "-v"}, packs...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "chain length = ") {
		t.Fatalf("test repository has no deltas; the delta path would go untested")
	}
	snap := leased(t, st, commit)

	want := make(map[string][]byte, len(files))
	for _, f := range files {
		want[f.Path] = f.Content
	}
	type item struct {
		path string
		id   snapshot.ID
	}
	var items []item
	for p, id := range blobsOf(t, snap) {
		items = append(items, item{p, id})
	}
	if len(items) != len(files) {
		t.Fatalf("tree has %d files, committed %d", len(items), len(files))
	}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(items); i += 4 {
				it := items[i]
				rc, size, err := snap.Stream(it.id)
				if err != nil {
					t.Errorf("%s: %v", it.path, err)
					return
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("%s: %v", it.path, err)
					return
				}
				if size != int64(len(got)) || !bytes.Equal(got, want[it.path]) {
					t.Errorf("%s: read %d bytes (size %d), want %d bytes as committed", it.path, len(got), size, len(want[it.path]))
				}
			}
		}(w)
	}
	wg.Wait()
}

// TestOpenFromStore: once the blob store has them, Open serves blobs from
// it, and a blob opened before the snapshot is released (and its blobs
// trimmed) stays readable after (a workspace's open files keep their
// commit's bytes when the workspace moves to another commit).
func TestOpenFromStore(t *testing.T) {
	files := contentsFiles()
	st, _, _, commit := setup(t, files) // MemBlobMax 1000: larger blobs a reader stores itself
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, snap)
	ids := blobsOf(t, snap)
	type open struct {
		path string
		b    snapshot.Blob
	}
	var opened []open
	for _, f := range files {
		b, err := snap.Open(ids[f.Path])
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		opened = append(opened, open{f.Path, b})
	}
	if m := st.Metrics(); m.BlobOpens[snapshot.FromBlobFile] < int64(len(files)-5) || m.BlobOpens[snapshot.FromPacks] != 0 {
		t.Errorf("opens by source %v: want the blob store's", m.BlobOpens)
	}
	release()
	if _, err := st.TrimBlobs(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, f := range files {
		want[f.Path] = f.Content
	}
	for _, o := range opened {
		got := make([]byte, o.b.Size())
		if _, err := o.b.ReadAt(got, 0); err != nil && !(err == io.EOF && len(got) == 0) {
			t.Errorf("%s after release: %v", o.path, err)
		} else if !bytes.Equal(got, want[o.path]) {
			t.Errorf("%s after release: %d bytes differ from the %d committed", o.path, len(got), len(want[o.path]))
		}
		o.b.Close()
		o.b.Close() // twice is harmless
	}
}

// BenchmarkReadWhole reads small stored blobs whole, as the daemon pushes
// a directory's files: through Open (an *os.File per blob) and through
// ReadFile (a bare descriptor).
func BenchmarkReadWhole(b *testing.B) {
	files := gittest.Generate(2000, 3)
	st, _, _, commit := setup(b, files)
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	fill(b, snap)
	type file struct {
		path string
		e    snapshot.Entry
	}
	var fs []file
	for p, id := range blobsOf(b, snap) {
		fs = append(fs, file{p, snapshot.Entry{Name: p, Kind: snapshot.File, ID: id}})
	}
	buf := make([]byte, 64<<10)
	b.Run("Open", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f := fs[i%len(fs)]
			i++
			bl, err := snap.OpenAt(f.path, f.e)
			if err != nil {
				b.Fatal(err)
			}
			if int64(cap(buf)) < bl.Size() {
				buf = make([]byte, bl.Size())
			}
			if _, err := bl.ReadAt(buf[:bl.Size()], 0); err != nil && err != io.EOF {
				b.Fatal(err)
			}
			bl.Close()
		}
	})
	b.Run("ReadFile", func(b *testing.B) {
		i := 0
		for b.Loop() {
			f := fs[i%len(fs)]
			i++
			var err error
			if buf, err = snap.ReadFile(f.path, f.e, buf, 4<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
}
