package snapshot_test

import (
	"bytes"
	"context"
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

type fndLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *fndLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *fndLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// fndStore opens the store of root as a new process would.
func fndStore(t *testing.T, root string, log *fndLog) *snapshot.Store {
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

func fndSetup(t *testing.T) (root, commit string, repo *gittest.Repo) {
	t.Helper()
	repo = gittest.NewRepo(t)
	commit = repo.Commit(t, "main", "first", gittest.Generate(60, 1))
	root = t.TempDir()
	lg := slog.New(slog.NewTextHandler(&fndLog{}, nil))
	ms, err := mirror.Open(root, lg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Add(context.Background(), "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	return root, commit, repo
}

func fndNoTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), locks.TempMarker) {
			t.Errorf("temp left: %s", p)
		}
		return nil
	})
}

// TestFoundationBuildOnce: stores of separate "processes" asking for the same
// commit at once build it once.
func TestFoundationBuildOnce(t *testing.T) {
	root, commit, _ := fndSetup(t)
	log := &fndLog{}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		st := fndStore(t, root, log)
		for j := 0; j < 3; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				snap, release, err := st.Get(context.Background(), "demo", commit)
				if err != nil {
					t.Error(err)
					return
				}
				defer release()
				if snap.Commit() != commit {
					t.Errorf("got snapshot of %s", snap.Commit())
				}
			}()
		}
	}
	wg.Wait()
	if n := log.count("snapshot created"); n != 1 {
		t.Fatalf("%d snapshots built, want 1", n)
	}
	if !snapshot.Published(root, commit) || snapshot.Published(root, "nope") {
		t.Fatal("Published is wrong")
	}
	fndNoTemps(t, root)
}

// TestFoundationCorruptSnapshotRefused: a published snapshot whose pinned pack
// was truncated (through the hard link it shares with the mirror) is never
// served: it is discarded and rebuilt from the repaired mirror, or, with no
// repository to rebuild from, refused with an error.
func TestFoundationCorruptSnapshotRefused(t *testing.T) {
	tests := []struct {
		name    string
		repo    string
		wantErr bool
	}{
		{"rebuilt from the repaired mirror", "demo", false},
		{"refused without a repository", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, commit, _ := fndSetup(t)
			st := fndStore(t, root, &fndLog{})
			_, release, err := st.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Fatal(err)
			}
			release()
			packs, _ := filepath.Glob(filepath.Join(root, "snapshots", commit, "objects", "pack", "*.pack"))
			if len(packs) == 0 {
				t.Fatal("no pinned pack")
			}
			for _, p := range packs {
				st, _ := os.Stat(p)
				if err := os.Truncate(p, st.Size()-100); err != nil {
					t.Fatal(err)
				}
			}
			log := &fndLog{}
			snap, release, err := fndStore(t, root, log).Get(context.Background(), tc.repo, commit)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Get: %v, want error=%v", err, tc.wantErr)
			}
			if log.count("snapshot is corrupt") != 1 {
				t.Errorf("corruption not logged: %s", log.b.String())
			}
			if err != nil {
				if !strings.Contains(err.Error(), "corrupt") {
					t.Errorf("error %q does not say the snapshot is corrupt", err)
				}
				return
			}
			defer release()
			// Every blob reads back whole.
			var walk func(id snapshot.ID) int
			walk = func(id snapshot.ID) int {
				entries, err := snap.Tree(id)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, e := range entries {
					if e.Kind == snapshot.Dir {
						n += walk(e.ID)
						continue
					}
					r, size, err := snap.Stream(e.ID)
					if err != nil {
						t.Fatalf("%s: %v", e.Name, err)
					}
					var b bytes.Buffer
					if _, err := b.ReadFrom(r); err != nil || int64(b.Len()) != size {
						t.Fatalf("%s: read %d of %d bytes: %v", e.Name, b.Len(), size, err)
					}
					r.Close()
					n++
				}
				return n
			}
			if n := walk(snap.Root()); n != 60 {
				t.Fatalf("read %d files, want 60", n)
			}
			if log.count("snapshot created") != 1 {
				t.Errorf("snapshot not rebuilt: %s", log.b.String())
			}
			fndNoTemps(t, root)
		})
	}
}

// TestFoundationVerifyDiscards: a commit whose tree names a blob the mirror
// does not have fails verification: nothing is published, no temp is left,
// and asking again fails again (nothing unverified is reused).
func TestFoundationVerifyDiscards(t *testing.T) {
	root, _, _ := fndSetup(t)
	mirrorDir := filepath.Join(root, "mirrors", "demo.git")
	tree := fndGitIn(t, mirrorDir, "100644 blob "+strings.Repeat("ab", 20)+"\tghost.txt\n", "mktree", "--missing")
	bad := fndGitIn(t, mirrorDir, "bad\n", "commit-tree", tree)
	for i := 0; i < 2; i++ {
		_, _, err := fndStore(t, root, &fndLog{}).Get(context.Background(), "demo", bad)
		if err == nil || !strings.Contains(err.Error(), "verification") {
			t.Fatalf("Get of a commit with a missing blob: %v", err)
		}
		if snapshot.Published(root, bad) {
			t.Fatal("unverified snapshot published")
		}
		fndNoTemps(t, root)
	}
	_, _, err := fndStore(t, root, &fndLog{}).Get(context.Background(), "demo", "abc")
	if err == nil {
		t.Fatal("Get of a short id succeeded")
	}
}

// TestFoundationGCAcrossStores: a lease held through one store keeps the
// snapshot through another store's GC.
func TestFoundationGCAcrossStores(t *testing.T) {
	root, commit, _ := fndSetup(t)
	a, b := fndStore(t, root, &fndLog{}), fndStore(t, root, &fndLog{})
	_, release, err := a.Get(context.Background(), "demo", commit)
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := b.GC(context.Background(), nil); err != nil || len(removed) != 0 {
		t.Fatalf("GC under another store's lease removed %v, %v", removed, err)
	}
	release()
	if removed, err := b.GC(context.Background(), nil); err != nil || len(removed) != 1 {
		t.Fatalf("GC removed %v, %v; want the snapshot", removed, err)
	}
	if snapshot.Published(root, commit) {
		t.Fatal("still published")
	}
}

func fndGitIn(t *testing.T, gitDir, stdin string, args ...string) string {
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
