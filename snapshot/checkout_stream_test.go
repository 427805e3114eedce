package snapshot_test

import (
	"bytes"
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
