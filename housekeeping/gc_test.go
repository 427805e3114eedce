package housekeeping_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gitfs/gitfs/housekeeping"
	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// host is a root with a mirror "demo" of a repository with four commits,
// each with a published snapshot.
type host struct {
	root    string
	ms      *mirror.Set
	st      *snapshot.Store
	commits []string
}

func newHost(t *testing.T) *host {
	t.Helper()
	repo := gittest.NewRepo(t)
	h := &host{root: t.TempDir()}
	for i := 0; i < 4; i++ {
		h.commits = append(h.commits, repo.Commit(t, "main", "c", gittest.Generate(5+i, int64(i))))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	if h.ms, err = mirror.Open(h.root, log); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ms.Add(context.Background(), "demo", repo.Dir); err != nil {
		t.Fatal(err)
	}
	if h.st, err = snapshot.NewStore(h.root, h.ms, log, snapshot.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.commits {
		_, release, err := h.st.Get(context.Background(), "demo", c)
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	return h
}

// age makes commit's snapshot look last used d ago.
func (h *host) age(t *testing.T, commit string, d time.Duration) {
	t.Helper()
	past := time.Now().Add(-d)
	for _, p := range []string{
		filepath.Join(h.root, "snapshots", commit, "meta.json"),
		filepath.Join(h.root, "locks", "snapshot-"+commit+".lease"),
	} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
}

func published(t *testing.T, root string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	var out []string
	for _, e := range entries {
		if mirror.IsFullSHA(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// TestGCSnapshotTTL: with a TTL, only snapshots unused for longer go; a
// leased one, a workspace's and a checkout --git's stay however old.
func TestGCSnapshotTTL(t *testing.T) {
	h := newHost(t)
	old, recent, leased, heldByCheckout := h.commits[0], h.commits[1], h.commits[2], h.commits[3]
	for _, c := range []string{old, leased, heldByCheckout} {
		h.age(t, c, 48*time.Hour)
	}
	h.age(t, recent, time.Hour)
	_, release, err := h.st.Get(context.Background(), "demo", leased)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	h.age(t, leased, 48*time.Hour) // Get touched it: make it old again, the lease alone must keep it
	// A checkout --git borrowing the snapshot's objects.
	co := t.TempDir()
	alt := filepath.Join(co, ".git", "objects", "info")
	if err := os.MkdirAll(alt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alt, "alternates"), []byte(filepath.Join(h.root, "snapshots", heldByCheckout, "objects")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.st.AddHolder(heldByCheckout, co); err != nil {
		t.Fatal(err)
	}

	r, err := housekeeping.GC(context.Background(), h.root, h.ms, h.st, housekeeping.Options{SnapshotTTL: 24 * time.Hour, NoMirrorGC: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Snapshots) != 1 || r.Snapshots[0] != old {
		t.Errorf("removed %v, want only %s", r.Snapshots, old)
	}
	want := []string{recent, leased, heldByCheckout}
	sort.Strings(want)
	if got := published(t, h.root); len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("kept %v, want %v", got, want)
	}
	// Of the removed snapshot's lock files, only the lease file (aged
	// above) is older than LockAge: it goes, its build lock stays.
	if r.Locks != 1 {
		t.Errorf("removed %d lock files, want 1", r.Locks)
	}
	if _, err := os.Stat(filepath.Join(h.root, "locks", "snapshot-"+old+".lease")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old lease file of a removed snapshot: %v", err)
	}
	// The kept snapshots still open and read.
	for _, c := range want {
		snap, rel, err := h.st.Get(context.Background(), "demo", c)
		if err != nil {
			t.Fatalf("kept snapshot %s: %v", c, err)
		}
		if _, err := snap.Tree(snap.Root()); err != nil {
			t.Errorf("kept snapshot %s: %v", c, err)
		}
		rel()
	}
}

// TestGCPrunesLeftovers: lock files and verified-pack markers of removed
// snapshots go once old enough, as do broken mirror copies past their TTL;
// what a kept snapshot uses stays.
func TestGCPrunesLeftovers(t *testing.T) {
	h := newHost(t)
	kept := h.commits[3]
	lockDir := filepath.Join(h.root, "locks")
	markers := func() []string {
		entries, _ := os.ReadDir(filepath.Join(h.root, "snapshots", ".verified-packs"))
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	before := markers()
	if len(before) == 0 {
		t.Fatal("no verified-pack markers to prune")
	}
	// Commit kept is a workspace's: make the record gc reads.
	ws := filepath.Join(h.root, "workspaces", "w")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "meta.json"), []byte(`{"name":"w","repo":"demo","rev":"main","commit":"`+kept+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(h.root, "mirrors", "demo.broken-20200101T000000.000000000")
	if err := os.Mkdir(broken, 0o700); err != nil {
		t.Fatal(err)
	}
	// First run: the other snapshots go; their lock files are too young.
	r, err := housekeeping.GC(context.Background(), h.root, h.ms, h.st, housekeeping.Options{NoMirrorGC: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Snapshots) != 3 || len(r.Broken) != 1 {
		t.Fatalf("first run: %+v", r)
	}
	if _, err := os.Stat(broken); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("broken copy of 2020 kept: %v", err)
	}
	past := time.Now().Add(-2 * time.Hour)
	entries, _ := os.ReadDir(lockDir)
	for _, e := range entries {
		os.Chtimes(filepath.Join(lockDir, e.Name()), past, past)
	}
	r, err = housekeeping.GC(context.Background(), h.root, h.ms, h.st, housekeeping.Options{NoMirrorGC: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Locks == 0 {
		t.Errorf("second run removed no lock file: %+v", r)
	}
	entries, _ = os.ReadDir(lockDir)
	for _, e := range entries {
		name := e.Name()
		if len(name) > 49 && name[:9] == "snapshot-" && name[9:49] != kept {
			t.Errorf("lock file of a removed snapshot left: %s", name)
		}
	}
	if _, err := os.Stat(filepath.Join(lockDir, "mirror-demo.lock")); err != nil {
		t.Errorf("the mirror's lock file was removed: %v", err)
	}
	after := markers()
	if len(after) == 0 || len(after) > len(before) {
		t.Errorf("markers %v -> %v: the kept snapshot's pack must stay marked", before, after)
	}
	snap, rel, err := h.st.Get(context.Background(), "demo", kept)
	if err != nil {
		t.Fatalf("kept snapshot: %v", err)
	}
	if _, err := snap.Tree(snap.Root()); err != nil {
		t.Error(err)
	}
	rel()
}
