// Fixtures shared by the package's tests: mirrors with a commit, stores
// opened as a new process would, leases, hand-made hostile objects.
package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// setup commits files to a new repository, mirrors it as "demo" and
// opens a store with MemBlobMax 1000 (larger blobs go to ROOT/blobs); it
// returns the store, the mirrors, the root and the commit.
func setup(t testing.TB, files []gittest.File) (*snapshot.Store, *mirror.Set, string, string) {
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

// setupMirror mirrors, as "demo", a new repository of 60 files and
// returns the root, the commit and the repository.
func setupMirror(t *testing.T) (root, commit string, repo *gittest.Repo) {
	t.Helper()
	repo = gittest.NewRepo(t)
	commit = repo.Commit(t, "main", "first", gittest.Generate(60, 1))
	root = t.TempDir()
	lg := slog.New(slog.NewTextHandler(&syncLog{}, nil))
	ms, err := mirror.Open(root, lg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Add(context.Background(), "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	return root, commit, repo
}

// openStore opens the store of root as a new process would.
func openStore(t *testing.T, root string, log *syncLog) *snapshot.Store {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ms, err := mirror.Open(root, lg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, lg, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// syncLog is a log sink that tests count messages in.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// noTemps fails the test for any temp file or directory left under dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), locks.TempMarker) {
			t.Errorf("temp left: %s", p)
		}
		return nil
	})
}

// gitIn runs git on gitDir with stdin and returns its trimmed output.
func gitIn(t *testing.T, gitDir, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_DIR="+gitDir,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// leased returns the snapshot of commit, released when the test ends.
func leased(t *testing.T, st *snapshot.Store, commit string) *snapshot.Snapshot {
	t.Helper()
	snap, release, err := st.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return snap
}

// fill stores snap's blobs in the blob store.
func fill(t testing.TB, snap *snapshot.Snapshot) {
	t.Helper()
	if _, err := snap.Fill(context.Background(), snapshot.FillOptions{Workers: 2}); err != nil {
		t.Fatal(err)
	}
}

// blobsOf maps every path of the snapshot's tree to its blob id.
func blobsOf(t testing.TB, snap *snapshot.Snapshot) map[string]snapshot.ID {
	t.Helper()
	out := map[string]snapshot.ID{}
	var walk func(id snapshot.ID, dir string)
	walk = func(id snapshot.ID, dir string) {
		entries, err := snap.Tree(id)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			p := strings.TrimPrefix(dir+"/"+e.Name, "/")
			if e.Kind == snapshot.Dir {
				walk(e.ID, p)
			} else {
				out[p] = e.ID
			}
		}
	}
	walk(snap.Root(), "")
	return out
}

// contentsFiles is a tree that exercises every path of the contents
// writer: many small blobs (gathered into shared writes), delta chains, a
// blob larger than a gathered write (streamed into its own range), an
// empty blob, duplicate contents (stored once) and a symlink.
func contentsFiles() []gittest.File {
	files := gittest.Generate(200, 11)
	base := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 1500)
	for i := 0; i < 20; i++ {
		v := append([]byte(nil), base...)
		copy(v[i*1000:], fmt.Sprintf("edit %d", i))
		files = append(files, gittest.File{Path: fmt.Sprintf("versions/v%02d.txt", i), Content: v})
	}
	big := make([]byte, 1<<20+12345)
	for i := range big {
		big[i] = byte(i*13 + i/4096)
	}
	return append(files,
		gittest.File{Path: "big.bin", Content: big},
		gittest.File{Path: "empty", Content: nil},
		gittest.File{Path: "copy/of/v00.txt", Content: files[200].Content},
		gittest.File{Path: "link", Content: []byte("versions/v01.txt"), Mode: "120000"},
	)
}

// hostileObjects writes hand-made objects straight into a mirror's object
// store, as if fetch-time fsck had been bypassed: git's own tools refuse to
// make most of these trees. Ids are computed here, and everything is
// written by one git call at flush.
type hostileObjects struct {
	t      *testing.T
	mirror string
	dir    string
	paths  map[string][]string // by object type
	n      int
}

func newHostileObjects(t *testing.T, mirrorDir string) *hostileObjects {
	return &hostileObjects{t: t, mirror: mirrorDir, dir: t.TempDir(), paths: map[string][]string{}}
}

func (h *hostileObjects) write(typ string, body []byte) string {
	h.n++
	p := filepath.Join(h.dir, fmt.Sprint(h.n))
	if err := os.WriteFile(p, body, 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.paths[typ] = append(h.paths[typ], p)
	s := sha1.New()
	fmt.Fprintf(s, "%s %d\x00", typ, len(body))
	s.Write(body)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *hostileObjects) blob(content string) string { return h.write("blob", []byte(content)) }

// tree writes a tree of entries exactly as given: any names, any order.
func (h *hostileObjects) tree(entries ...hEntry) string {
	var b bytes.Buffer
	for _, e := range entries {
		raw, err := hex.DecodeString(e.id)
		if err != nil || len(raw) != 20 {
			h.t.Fatalf("bad id %q", e.id)
		}
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		b.Write(raw)
	}
	return h.write("tree", b.Bytes())
}

// flush writes the objects into the mirror (loose: the build packs them).
func (h *hostileObjects) flush() {
	h.t.Helper()
	for typ, paths := range h.paths {
		cmd := exec.Command("git", "--git-dir", h.mirror, "hash-object", "-t", typ, "--literally", "-w", "--stdin-paths")
		cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			h.t.Fatalf("hash-object: %v: %s", err, out)
		}
	}
	h.paths = map[string][]string{}
}

// commit writes (at once) a commit of tree.
func (h *hostileObjects) commit(tree, msg string) string {
	h.flush()
	return gitIn(h.t, h.mirror, "", "commit-tree", tree, "-m", msg)
}

type hEntry struct{ mode, name, id string }

// hostileStore opens root's store with opts, as a new process would.
func hostileStore(t *testing.T, root string, opts snapshot.Options) *snapshot.Store {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, lg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, lg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func mustHash(t *testing.T, s string) [20]byte {
	t.Helper()
	var id [20]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 20 {
		t.Fatalf("bad id %q", s)
	}
	copy(id[:], b)
	return id
}
