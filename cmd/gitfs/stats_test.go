package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/daemon"
)

func TestQuantile(t *testing.T) {
	sum := 0.0
	h := &daemon.Sample{Name: "h", Value: 100, Sum: &sum, Buckets: []daemon.Bucket{
		{LE: 0.001, Count: 50}, {LE: 0.01, Count: 90}, {LE: 0.1, Count: 99}, {LE: math.Inf(1), Count: 100},
	}}
	for _, tc := range []struct {
		q    float64
		want string
	}{
		{0.25, "500µs"}, // halfway into the first bucket, from 0
		{0.5, "1.0ms"},  // its top
		{0.7, "5.5ms"},  // halfway into the second
		{0.995, ">100.0ms"},
	} {
		if got := quantile(h, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %s, want %s", tc.q, got, tc.want)
		}
	}
	if got := quantile(&daemon.Sample{}, 0.5); got != "-" {
		t.Errorf("quantile of an empty histogram = %s", got)
	}
}

func TestPrintStats(t *testing.T) {
	sum := 0.03
	st := daemon.StatsResponse{Version: "v1", PID: 7, Mountpoint: "/mnt/gitfs", Scope: "user",
		Yours: daemon.YourStats{Workspaces: []string{"job1"}},
		Metrics: []daemon.Sample{
			{Name: "gitfs_workspaces", Value: 3},
			{Name: "gitfs_fuse_request_duration_seconds", Labels: map[string]string{"op": "lookup"}, Value: 3, Sum: &sum,
				Buckets: []daemon.Bucket{{LE: 0.01, Count: 3}, {LE: math.Inf(1), Count: 3}}},
			{Name: "gitfs_fuse_request_errors_total", Labels: map[string]string{"op": "lookup", "errno": "ENOENT"}, Value: 2},
			{Name: "gitfs_lower_reads_total", Value: 5},
			{Name: "gitfs_pushed_files_total", Value: 39},
		}}
	var b bytes.Buffer
	printStats(&b, st)
	out := b.String()
	for _, want := range []string{"gitfs v1, pid 7, serving /mnt/gitfs", "workspaces    3 (yours: job1)", "lookup", "fetches       none",
		"lower reads   5 (0.0 MiB), 39 files pushed before a read, 0 copy-ups"} {
		if !strings.Contains(out, want) {
			t.Errorf("stats output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "REPO") {
		t.Errorf("a user's stats show a repository table:\n%s", out)
	}
}
