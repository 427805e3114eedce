package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestBenchMount times, on generated repos, `ws create` of a commit whose
// snapshot exists next to `git clone --shared` + checkout, and `tar -cf - .
// | wc -c` over a workspace (cold: fresh daemon and dropped page cache;
// warm: again) next to the same over a native checkout. It runs only with
// GITFS_BENCH set to a comma-separated list of sizes (e.g. 1000,20000).
//
//	GITFS_BENCH=1000,20000 go test ./integration -run TestBenchMount -v -timeout 60m
func TestBenchMount(t *testing.T) {
	sizes := benchSizes(t)
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) { benchMount(t, n) })
	}
}

func benchMount(t *testing.T, n int) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "bench", gittest.Generate(n, 42))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mirror := filepath.Join(root, "mirrors", "demo.git")
	d := serve(t, root, "")
	wsCreate(t, root, "warmup", "--repo", "demo", "--rev", commit) // builds the snapshot

	const runs = 5
	var create, clone []time.Duration
	for i := 0; i < runs; i++ {
		create = append(create, timeIt(t, func() { wsCreate(t, root, fmt.Sprintf("w%d", i), "--repo", "demo", "--rev", commit) }))
		dir := filepath.Join(t.TempDir(), "clone")
		clone = append(clone, timeIt(t, func() {
			sh(t, "", fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", mirror, dir, dir, commit))
		}))
	}
	native := filepath.Join(t.TempDir(), "native")
	sh(t, "", fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", mirror, native, native, commit))

	tarOf := func(dir string) time.Duration {
		return timeIt(t, func() { sh(t, dir, "tar -cf - . | wc -c >/dev/null") })
	}
	var tarWsCold, tarWsWarm, tarNatCold, tarNatWarm []time.Duration
	for i := 0; i < 3; i++ {
		// Cold: a fresh daemon (empty caches) and no page cache.
		d.stop(t)
		d = serve(t, root, d.mnt)
		dropCaches(t)
		tarWsCold = append(tarWsCold, tarOf(filepath.Join(d.mnt, "w0")))
		tarWsWarm = append(tarWsWarm, tarOf(filepath.Join(d.mnt, "w0")))
		if i == 0 {
			// What one more warm tar asks of the daemon, by operation
			// (RELEASE, FORGET and answers of ENOSYS are not counted).
			before := fuseRequestsByOp(t, root)
			tarOf(filepath.Join(d.mnt, "w0"))
			t.Logf("%d files: FUSE requests of a warm tar: %v", n, diffRequests(before, fuseRequestsByOp(t, root)))
		}
		dropCaches(t)
		tarNatCold = append(tarNatCold, tarOf(native))
		tarNatWarm = append(tarNatWarm, tarOf(native))
	}
	// 4 KiB writes to a new file: one WRITE each in no-open mode, and no
	// GETXATTR security.capability before each (CAP_HANDLE_KILLPRIV_V2).
	writes := func(dir string) time.Duration {
		os.Remove(filepath.Join(dir, "written"))
		return timeIt(t, func() { sh(t, dir, "dd if=/dev/zero of=written bs=4k count=25600 2>/dev/null") })
	}
	var wrWs, wrNat []time.Duration
	before := fuseRequestsByOp(t, root)
	for i := 0; i < 3; i++ {
		wrWs = append(wrWs, writes(filepath.Join(d.mnt, "w0")))
		wrNat = append(wrNat, writes(native))
	}
	t.Logf("%d files: 3x100 MiB in 4 KiB writes: FUSE requests %v", n, diffRequests(before, fuseRequestsByOp(t, root)))
	os.Remove(filepath.Join(d.mnt, "w0", "written"))
	ratio := func(a, b []time.Duration) float64 { return float64(median(a)) / float64(median(b)) }
	t.Logf("%d files: 100 MiB in 4 KiB writes to a new file: workspace %v vs native %v (throughput ratio %.2f)",
		n, median(wrWs), median(wrNat), ratio(wrNat, wrWs))
	t.Logf("%d files: ws create median %v vs git clone --shared + checkout %v: ratio %.4f",
		n, median(create), median(clone), ratio(create, clone))
	t.Logf("%d files: tar cold: workspace %v vs native %v (ratio %.2f); warm: workspace %v vs native %v (ratio %.2f)",
		n, median(tarWsCold), median(tarNatCold), ratio(tarWsCold, tarNatCold),
		median(tarWsWarm), median(tarNatWarm), ratio(tarWsWarm, tarNatWarm))
}
