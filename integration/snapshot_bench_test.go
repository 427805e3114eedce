package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestBenchSnapshot times, on generated repos, snapshot creation of a new
// commit and `repo add` + `checkout` next to `git clone --mirror` + `git
// clone --shared` + `git checkout` of the same repository, alternating, and
// logs medians and ratios. Runs only with GITFS_BENCH set, e.g.
//
//	GITFS_BENCH=20000,100000 go test ./integration -run TestBenchSnapshot -v -timeout 60m
func TestBenchSnapshot(t *testing.T) {
	for _, n := range benchSizes(t) {
		t.Run(strconv.Itoa(n), func(t *testing.T) { benchSnapshot(t, n) })
	}
}

var tookRE = regexp.MustCompile(`msg="snapshot created".* took=([0-9.]+[mµn]?s)`)

func benchSnapshot(t *testing.T, n int) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "bench", gittest.Generate(n, 42))
	const runs = 3
	var gitfsTotal, gitTotal, snapTimes, checkoutOnly []time.Duration
	for i := 0; i < runs; i++ {
		root := t.TempDir()
		out := filepath.Join(t.TempDir(), "out")
		var stderr string
		gitfsTotal = append(gitfsTotal, timeIt(t, func() {
			mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
			r := gitfs(t, root, "--log-level", "info", "checkout", "demo", commit, out)
			if r.code != 0 {
				t.Fatalf("checkout: %s", r.stderr)
			}
			stderr = r.stderr
		}))
		m := tookRE.FindStringSubmatch(stderr)
		if m == nil {
			t.Fatalf("no snapshot timing in %q", stderr)
		}
		took, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		snapTimes = append(snapTimes, took)

		dir := t.TempDir()
		mirror := filepath.Join(dir, "m.git")
		clone := filepath.Join(dir, "clone")
		var co time.Duration
		gitTotal = append(gitTotal, timeIt(t, func() {
			sh(t, "", fmt.Sprintf("git clone -q --mirror --no-local %s %s", repo.Dir, mirror))
			co = timeIt(t, func() {
				sh(t, "", fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", mirror, clone, clone, commit))
			})
		}))
		checkoutOnly = append(checkoutOnly, co)
	}
	t.Logf("%d files: gitfs repo add + checkout %v vs git clone --mirror + clone --shared + checkout %v: ratio %.2f",
		n, median(gitfsTotal), median(gitTotal), float64(median(gitfsTotal))/float64(median(gitTotal)))
	t.Logf("%d files: snapshot creation %v vs git clone --shared + checkout %v: ratio %.2f",
		n, median(snapTimes), median(checkoutOnly), float64(median(snapTimes))/float64(median(checkoutOnly)))
}
