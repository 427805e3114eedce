package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// The checkout benchmark: `gitfs checkout` against `git clone --shared
// --no-checkout <mirror>` + `git checkout` (checkout.workers at its best)
// of the same commit from the same mirror (gitfs's own), on generated
// repositories, alternating runs, medians. The snapshot is built once
// before timing: it is shared state, made once per commit for every
// checkout and workspace, as the mirror is for git. gitfs is timed twice:
// with the blob store holding the commit's blobs (inflated by an earlier
// checkout) and with it empty (the first checkout of a commit, which
// fills it).
//
// Large sizes never run in `go test ./...`:
//
//	GITFS_CHECKOUT_BENCH=1000,20000,100000 go test ./integration -run TestMatCheckoutBench -v -timeout 60m
//	go test ./integration -run '^$' -bench BenchmarkMatCheckout -benchtime 5x    (1k and 20k files)
//
// GITFS_BENCH_CACHE=DIR keeps the generated repositories and the gitfs root
// between runs (generating 100k files takes minutes). GITFS_CHECKOUT_RUNS
// sets the number of timed runs of each side (default 5). Every run writes
// a new directory, all removed at the end: a 100k-file run needs ~25 GB
// of scratch space.

// matBenchSetup is a generated repository, a gitfs root with its mirror
// and snapshot, and the commit.
type matBenchSetup struct {
	root, mirror, commit, scratch string
	seq                           *int
}

// out returns a new, unused output path.
func (s matBenchSetup) out(tag string) string {
	*s.seq++
	return filepath.Join(s.scratch, fmt.Sprintf("%s-%d", tag, *s.seq))
}

func matBenchPrepare(t testing.TB, n int) matBenchSetup {
	t.Helper()
	cache := os.Getenv("GITFS_BENCH_CACHE")
	var base string
	if cache != "" {
		base = filepath.Join(cache, fmt.Sprintf("checkout-%d", n))
	} else {
		base = t.TempDir()
	}
	src := filepath.Join(base, "src")
	root := filepath.Join(base, "root")
	if _, err := os.Stat(filepath.Join(base, "ready")); err != nil {
		os.RemoveAll(base)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, "", "init", "-q", "-b", "main", src)
		repo := &gittest.Repo{Dir: src}
		repo.Commit(t, "main", "bench", gittest.Generate(n, 42))
		mustGitfs(t, root, "repo", "add", "demo", src)
		if err := os.WriteFile(filepath.Join(base, "ready"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	commit := strings.TrimSpace(mustGitfs(t, root, "rev-parse", "demo", "main"))
	scratch, err := os.MkdirTemp(base, "scratch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scratch) })
	return matBenchSetup{root: root, mirror: filepath.Join(root, "mirrors", "demo.git"), commit: commit, scratch: scratch, seq: new(int)}
}

// matRun is one timed process run.
type matRun struct {
	wall   time.Duration
	maxRSS int64 // bytes, the largest of the processes run
}

func matExec(t testing.TB, dir string, name string, args ...string) matRun {
	t.Helper()
	// Peak RSS comes from /usr/bin/time, which forks its child normally:
	// a child started straight from this (large) test process would
	// inherit its high-water mark through vfork+exec.
	var rssFile string
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		f, err := os.CreateTemp("", "mat-rss-")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		args = append([]string{"-f", "%M", "-o", rssFile, name}, args...)
		name = "/usr/bin/time"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	var rss int64
	if rssFile != "" {
		b, _ := os.ReadFile(rssFile)
		kb, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		rss = kb * 1024
	}
	return matRun{wall: wall, maxRSS: rss}
}

func matGitfsCheckout(t testing.TB, s matBenchSetup, out string, extra ...string) matRun {
	args := append([]string{"--root", s.root, "checkout", "demo", s.commit, out}, extra...)
	return matExec(t, "", gitfsBin, args...)
}

func matGitCheckout(t testing.TB, s matBenchSetup, out string, workers int) matRun {
	a := matExec(t, "", "git", "clone", "-q", "--shared", "--no-checkout", s.mirror, out)
	b := matExec(t, "", "git", "-C", out, "-c", "checkout.workers="+strconv.Itoa(workers), "checkout", "-q", "--detach", s.commit)
	return matRun{wall: a.wall + b.wall, maxRSS: max(a.maxRSS, b.maxRSS)}
}

// matQuiesce flushes dirty pages outside the timing, so one run's
// writeback does not land on the next one's clock. Outputs are kept until
// the end: on these machines' journal-less ext4, deleting many files makes
// creating files slow for minutes afterwards (the inode allocator skips
// recently deleted inodes one by one), which would punish whichever side
// runs after a deletion.
func matQuiesce(s matBenchSetup) {
	exec.Command("sync").Run()
}

func matMedian(runs []matRun) time.Duration {
	ds := make([]time.Duration, len(runs))
	for i, r := range runs {
		ds[i] = r.wall
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// matPairedRatios formats the median, least and greatest of a[i]/b[i].
func matPairedRatios(a, b []matRun) string {
	r := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		r = append(r, float64(a[i].wall)/float64(b[i].wall))
	}
	if len(r) == 0 {
		return "none"
	}
	sort.Float64s(r)
	return fmt.Sprintf("%.2f [%.2f-%.2f]", r[len(r)/2], r[0], r[len(r)-1])
}

func matMaxRSS(runs []matRun) int64 {
	var m int64
	for _, r := range runs {
		m = max(m, r.maxRSS)
	}
	return m
}

// matCompare runs the comparison for n files and logs the result line.
func matCompare(t testing.TB, n, runs int) (gitfsMed, gitMed time.Duration, rss int64) {
	s := matBenchPrepare(t, n)
	out := func(tag string, i int) string { return filepath.Join(s.scratch, fmt.Sprintf("%s-%d", tag, i)) }
	// Warm up both sides (snapshot built, packs in the page cache).
	matGitfsCheckout(t, s, out("warm-gitfs", 0))
	matGitCheckout(t, s, out("warm-git", 0), 1)
	matQuiesce(s)

	// git's best checkout.workers on this machine and tree.
	bestW, bestD := 1, time.Duration(1<<62)
	for _, w := range []int{1, 2, 4, 8} {
		var rs []matRun
		for i := 0; i < 2; i++ {
			matQuiesce(s)
			rs = append(rs, matGitCheckout(t, s, out(fmt.Sprintf("probe-w%d", w), i), w))
		}
		d := min(rs[0].wall, rs[1].wall)
		t.Logf("%d files: git checkout.workers=%d: %v", n, w, d)
		if d < bestD {
			bestW, bestD = w, d
		}
	}
	// Three sides, in rotating order so drift hits each alike: gitfs
	// with the blob store holding the commit (every checkout of a commit
	// after its first), gitfs with the store empty (the first checkout of
	// a commit, which fills it), and git.
	var g, f, first []matRun
	for i := 0; i < runs; i++ {
		sides := []func(){
			func() { f = append(f, matGitfsCheckout(t, s, out("gitfs", i))) },
			func() {
				emptyBlobStore(t, s.root)
				matQuiesce(s)
				first = append(first, matGitfsCheckout(t, s, out("gitfs-first", i)))
			},
			func() { g = append(g, matGitCheckout(t, s, out("git", i), bestW)) },
		}
		for j := range sides {
			matQuiesce(s)
			sides[(i+j)%len(sides)]()
		}
	}
	matQuiesce(s)
	gitfsMed, gitMed = matMedian(f), matMedian(g)
	firstMed := matMedian(first)
	rss = max(matMaxRSS(f), matMaxRSS(first))
	t.Logf("%d files: gitfs checkout median %v (peak RSS %d MiB) vs git clone --shared --no-checkout + checkout (checkout.workers=%d) median %v (peak RSS %d MiB): ratio %.2f  [%d runs each]",
		n, gitfsMed.Round(time.Millisecond), matMaxRSS(f)>>20, bestW, gitMed.Round(time.Millisecond), matMaxRSS(g)>>20,
		float64(gitfsMed)/float64(gitMed), runs)
	t.Logf("%d files: first gitfs checkout of the commit (filling the blob store) median %v (peak RSS %d MiB): ratio %.2f to git",
		n, firstMed.Round(time.Millisecond), matMaxRSS(first)>>20, float64(firstMed)/float64(gitMed))
	// The file system's speed drifts within a run (on these machines,
	// creating files is slow for minutes after mass deletions); ratios of
	// the runs made side by side are steadier than ratios of medians.
	t.Logf("%d files: per-round ratios to git, median [min-max]: gitfs %s, first gitfs checkout %s",
		n, matPairedRatios(f, g), matPairedRatios(first, g))
	return gitfsMed, gitMed, rss
}

func matBenchEnv(t testing.TB) []int {
	spec := os.Getenv("GITFS_CHECKOUT_BENCH")
	if spec == "" && os.Getenv("CI") == "true" {
		spec = "100" // a smoke run under CI: the code keeps working
	}
	if spec == "" {
		return nil
	}
	var sizes []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("GITFS_CHECKOUT_BENCH=%q: %v", spec, err)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// TestMatCheckoutBench is the benchmark driver; see the comment at the top.
func TestMatCheckoutBench(t *testing.T) {
	sizes := matBenchEnv(t)
	if len(sizes) == 0 {
		t.Skip("set GITFS_CHECKOUT_BENCH=1000,20000,100000 to run the checkout benchmark")
	}
	runs := 5
	if r, err := strconv.Atoi(os.Getenv("GITFS_CHECKOUT_RUNS")); err == nil && r > 0 {
		runs = r
	}
	for _, n := range sizes {
		t.Run(strconv.Itoa(n), func(t *testing.T) { matCompare(t, n, runs) })
	}
}

// BenchmarkMatCheckout times gitfs checkout and git's clone --shared +
// checkout of the same commit, per iteration, for 1k and 20k files.
func BenchmarkMatCheckout(b *testing.B) {
	for _, n := range []int{1000, 20000} {
		s := matBenchPrepare(b, n)
		b.ResetTimer()
		matGitfsCheckout(b, s, s.out("warm"))
		b.Run(fmt.Sprintf("gitfs/%d", n), func(b *testing.B) {
			var rss int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				matQuiesce(s)
				b.StartTimer()
				r := matGitfsCheckout(b, s, s.out("gitfs"))
				rss = max(rss, r.maxRSS)
			}
			b.ReportMetric(float64(rss>>20), "MiB-peak-RSS")
		})
		b.Run(fmt.Sprintf("git/%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				matQuiesce(s)
				b.StartTimer()
				matGitCheckout(b, s, s.out("git"), 2)
			}
		})
		matQuiesce(s)
	}
}
