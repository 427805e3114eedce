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

// TestBenchGitStatus times `git status` in a workspace next to the same in
// a native checkout of the same commit, unchanged and with 10 modified
// files, and `ws create` next to clone + checkout. It runs only with
// GITFS_BENCH set to sizes (e.g. 20000,100000); under CI=true on a tiny
// tree, so that its code keeps working.
//
//	GITFS_BENCH=20000,100000 go test ./integration -run TestBenchGitStatus -v -timeout 60m
func TestBenchGitStatus(t *testing.T) {
	for _, n := range benchSizes(t) {
		t.Run(strconv.Itoa(n), func(t *testing.T) { benchGitStatus(t, n) })
	}
}

func benchGitStatus(t *testing.T, n int) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "bench", gittest.Generate(n, 42))
	root := t.TempDir()
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mirror := filepath.Join(root, "mirrors", "demo.git")
	// fsmonitor on whatever git's version: the benchmark measures both.
	serve(t, root, "", "--fsmonitor", "on")
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
	ws := wsCreate(t, root, "status", "--repo", "demo", "--rev", commit)
	native := filepath.Join(t.TempDir(), "native")
	sh(t, "", fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", mirror, native, native, commit))
	status := func(dir string) time.Duration {
		return timeIt(t, func() { sh(t, dir, "git status --porcelain >/dev/null") })
	}
	// A second workspace without fsmonitor (a git status with it off
	// would drop the other's fsmonitor state from its index).
	noHook := wsCreate(t, root, "nohook", "--repo", "demo", "--rev", commit)
	sh(t, noHook, "git status >/dev/null; git config --unset core.fsmonitor")
	// Warm them first: the first status of each also writes caches.
	status(ws)
	status(noHook)
	status(native)
	var wsClean, wsPlain, natClean, wsMod, natMod []time.Duration
	for i := 0; i < runs; i++ {
		wsClean = append(wsClean, status(ws))
		wsPlain = append(wsPlain, status(noHook))
		natClean = append(natClean, status(native))
	}
	for _, dir := range []string{ws, native} {
		for i := 0; i < 10; i++ {
			p := filepath.Join(dir, fmt.Sprintf("f%06d.txt", i)) // the first 20 are at the root
			if err := os.WriteFile(p, []byte("modified\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	status(ws)
	status(native)
	for i := 0; i < runs; i++ {
		wsMod = append(wsMod, status(ws))
		natMod = append(natMod, status(native))
	}
	ratio := func(a, b []time.Duration) float64 { return float64(median(a)) / float64(median(b)) }
	t.Logf("%d files: ws create %v vs clone --shared + checkout %v: ratio %.4f", n, median(create), median(clone), ratio(create, clone))
	t.Logf("%d files: git status unchanged: workspace %v vs native %v: ratio %.2f", n, median(wsClean), median(natClean), ratio(wsClean, natClean))
	t.Logf("%d files: git status unchanged, no fsmonitor: workspace %v vs native %v: ratio %.2f", n, median(wsPlain), median(natClean), ratio(wsPlain, natClean))
	t.Logf("%d files: git status 10 modified: workspace %v vs native %v: ratio %.2f", n, median(wsMod), median(natMod), ratio(wsMod, natMod))
}
