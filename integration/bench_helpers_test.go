package integration

import (
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
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
