package integration

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/blobstore"
	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"golang.org/x/sys/unix"
)

func benchSizes(t *testing.T) []int {
	spec := os.Getenv("GITFS_BENCH")
	if spec == "" {
		if os.Getenv("CI") != "true" {
			t.Skip("benchmark: set GITFS_BENCH=1000,20000,100000 to run")
		}
		// Under CI the benchmark runs on a tiny tree: its numbers mean
		// nothing there, but its code keeps working.
		spec = "100"
	}
	var sizes []int
	for _, s := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			t.Fatalf("GITFS_BENCH: %v", err)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func timeIt(t *testing.T, f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func sh(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
}

func dropCaches(t *testing.T) {
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		t.Logf("cannot drop page cache (%v): cold numbers are warm", err)
	}
}

// fuseRequestsByOp is how many FUSE requests of each operation the daemon of
// root has answered, from `gitfs stats --json`.
func fuseRequestsByOp(t *testing.T, root string) map[string]int64 {
	t.Helper()
	var st struct {
		Metrics []struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
			Value  float64           `json:"value"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "stats", "--json")), &st); err != nil {
		t.Fatalf("stats --json: %v", err)
	}
	out := map[string]int64{}
	for _, m := range st.Metrics {
		if m.Name == "gitfs_fuse_request_duration_seconds" {
			out[m.Labels["op"]] = int64(m.Value)
		}
	}
	return out
}

// diffRequests is after - before, without the operations that did not move.
func diffRequests(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for op, n := range after {
		if k := n - before[op]; k != 0 {
			d[op] = k
		}
	}
	return d
}

// storedBlobs counts the blobs in root's blob store (ROOT/blobs/ab/cdef...).
func storedBlobs(t testing.TB, root string) int {
	t.Helper()
	n := 0
	dirs, _ := filepath.Glob(filepath.Join(root, "blobs", "[0-9a-f][0-9a-f]"))
	for _, d := range dirs {
		es, _ := os.ReadDir(d)
		n += len(es)
	}
	return n
}

// checkoutFillsStore tells whether a gitfs checkout into dir fills root's
// blob store first: only where dir can share blocks with the store
// (reflinks), as materialize decides.
func checkoutFillsStore(t testing.TB, root, dir string) bool {
	t.Helper()
	bs, err := blobstore.Open(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	return bs.SharesBlocksWith(fd, nil)
}

// fillBlobStore stores every blob of commit in root's blob store, as the
// daemon does for each commit it serves.
func fillBlobStore(t testing.TB, root, repo, commit string) {
	t.Helper()
	snap, release, err := snapshotStore(t, root).Get(context.Background(), repo, commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := snap.Fill(context.Background(), snapshot.FillOptions{Workers: 2}); err != nil {
		t.Fatalf("fill the blob store with %s: %v", commit, err)
	}
}

// snapshotStore opens root's snapshot store in this process, as another
// gitfs process would.
func snapshotStore(t testing.TB, root string) *snapshot.Store {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ms, err := mirror.Open(root, log)
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// emptyBlobStore removes every blob of root's blob store, as a first
// checkout of a commit finds it.
func emptyBlobStore(t testing.TB, root string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(root, "blobs", "[0-9a-f][0-9a-f]"))
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

// distinctBlobs counts the distinct blobs (files and symlinks) of commit's
// tree in the repository at dir.
func distinctBlobs(t testing.TB, dir, commit string) int {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(gittest.Git(t, dir, "ls-tree", "-r", commit), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[1] == "blob" {
			seen[f[2]] = true
		}
	}
	return len(seen)
}
