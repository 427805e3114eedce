package integration

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCrashLeavesNothingHalfMade kills gitfs with SIGKILL at random points of `repo
// add`, `repo fetch` and `checkout` (snapshot creation), 20 runs in all.
// After each kill: no git the killed gitfs started lives on, nothing
// half-made is visible (a mirror or snapshot is complete or absent), the
// same command then succeeds, its result is right, and no temp dir is left.
// A slow upload-pack widens the window in which git is running. The runs go
// two at a time (go test's default -parallel on 2 cores), each with its own
// root.
func TestCrashLeavesNothingHalfMade(t *testing.T) {
	e := newCLIEnv(t)
	repo, first := newRemote(t, 50, 6)
	want := gittest.Archive(t, repo.Dir, first)
	slow := []string{"UPLOAD_PACK_DELAY=0.3"}

	// A root with the mirror and no snapshot, copied for fetch and
	// checkout runs.
	base := filepath.Join(t.TempDir(), "base")
	e.must(t, nil, base, "repo", "add", "demo", repo.Dir)
	copyRoot := func(t *testing.T) string {
		root := filepath.Join(t.TempDir(), "root")
		if out, err := exec.Command("cp", "-a", base, root).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		return root
	}

	// Calibrate: how long each command takes here, unkilled.
	timeIt := func(root string, args ...string) time.Duration {
		start := time.Now()
		e.must(t, slow, root, args...)
		return time.Since(start)
	}
	addDur := timeIt(filepath.Join(t.TempDir(), "cal-add"), "repo", "add", "demo", repo.Dir)
	calFetch := copyRoot(t)
	// Every fetch run starts from base, whose main is first.
	newMain := repo.Commit(t, "main", "second", gittest.Generate(50, 7))
	fetchDur := timeIt(calFetch, "repo", "fetch", "demo")
	calCheckout := copyRoot(t)
	p := e.start(t, nil, calCheckout, "checkout", "demo", first, filepath.Join(t.TempDir(), "out"))
	start := time.Now()
	snapMeta := filepath.Join(calCheckout, "snapshots", first, "meta.json")
	waitForFile(t, snapMeta, p)
	snapDur := time.Since(start)
	if r := p.wait(t); r.code != 0 {
		t.Fatalf("checkout: %s", r.stderr)
	}
	checkoutDur := time.Since(start)

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d; unkilled: add %v, fetch %v, checkout %v (snapshot published after %v)",
		seed, addDur, fetchDur, checkoutDur, snapDur)
	at := func(d time.Duration) time.Duration { return time.Duration(rng.Int63n(int64(d) + 1)) }

	for run := 0; run < 20; run++ {
		switch run % 3 {
		case 0:
			delay := at(addDur)
			t.Run(fmt.Sprintf("%02d-add-kill-at-%v", run, delay.Round(time.Millisecond)), func(t *testing.T) {
				t.Parallel()
				e := e.sub(t)
				root := filepath.Join(t.TempDir(), "root")
				p := e.start(t, slow, root, "repo", "add", "demo", repo.Dir)
				time.Sleep(delay)
				p.kill9()
				awaitNoProcs(t, e, 5*time.Second)
				mirror := filepath.Join(root, "mirrors", "demo.git")
				if _, err := os.Stat(mirror); err == nil {
					// Published: it must be complete.
					if got, err := gittest.GitErr(mirror, "rev-parse", "main"); err != nil || got != newMain {
						t.Fatalf("killed add published a mirror whose main is %q (%v)", got, err)
					}
				}
				e.must(t, nil, root, "repo", "add", "demo", repo.Dir)
				if got := e.must(t, nil, root, "rev-parse", "demo", "main").stdout; got != newMain+"\n" {
					t.Fatalf("main = %q after re-add", got)
				}
				requireNoTemps(t, root)
			})
		case 1:
			delay := at(fetchDur)
			t.Run(fmt.Sprintf("%02d-fetch-kill-at-%v", run, delay.Round(time.Millisecond)), func(t *testing.T) {
				t.Parallel()
				e := e.sub(t)
				root := copyRoot(t)
				p := e.start(t, slow, root, "repo", "fetch", "demo")
				time.Sleep(delay)
				p.kill9()
				awaitNoProcs(t, e, 5*time.Second)
				// The mirror is usable at once: main is the old or the new commit.
				if got := strings.TrimSpace(e.must(t, nil, root, "rev-parse", "demo", "main").stdout); got != first && got != newMain {
					t.Fatalf("main = %s after a killed fetch", got)
				}
				e.must(t, nil, root, "repo", "fetch", "demo")
				if got := strings.TrimSpace(e.must(t, nil, root, "rev-parse", "demo", "main").stdout); got != newMain {
					t.Fatalf("main = %s after the next fetch, want %s", got, newMain)
				}
				if locks, _ := filepath.Glob(filepath.Join(root, "mirrors", "demo.git", "*.lock")); len(locks) > 0 {
					t.Fatalf("git lock files left: %v", locks)
				}
				if broken, _ := filepath.Glob(filepath.Join(root, "mirrors", "*.broken-*")); len(broken) > 0 {
					t.Fatalf("a killed fetch made the mirror look broken: %v", broken)
				}
				requireNoTemps(t, root)
			})
		case 2:
			// Half the kills land while the snapshot is being built.
			delay := at(checkoutDur)
			if run%2 == 0 {
				delay = at(snapDur * 6 / 5)
			}
			t.Run(fmt.Sprintf("%02d-checkout-kill-at-%v", run, delay.Round(time.Millisecond)), func(t *testing.T) {
				t.Parallel()
				e := e.sub(t)
				root := copyRoot(t)
				outs := t.TempDir()
				killed := filepath.Join(outs, "killed")
				p := e.start(t, nil, root, "checkout", "demo", first, killed)
				time.Sleep(delay)
				p.kill9()
				awaitNoProcs(t, e, 5*time.Second)
				for _, s := range publishedSnapshots(t, root) {
					if _, err := os.Stat(filepath.Join(root, "snapshots", s, "meta.json")); err != nil {
						t.Fatalf("half-made snapshot %s published", s)
					}
				}
				if _, err := os.Stat(killed); err == nil {
					requireTree(t, want, killed) // published: complete
				}
				out := filepath.Join(outs, "next")
				e.must(t, nil, root, "checkout", "demo", first, out)
				requireTree(t, want, out)
				if snaps := publishedSnapshots(t, root); len(snaps) != 1 || snaps[0] != first {
					t.Fatalf("snapshots = %v", snaps)
				}
				requireNoTemps(t, root)
			})
		}
	}
}
