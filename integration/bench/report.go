//go:build linux

package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// result is one row of the table.
type result struct {
	Scenario string  `json:"scenario"`
	Tree     string  `json:"tree"`
	Files    int     `json:"files"`
	Unit     string  `json:"unit"` // of Gitfs and Git: "s" unless said
	Gitfs    stats   `json:"gitfs"`
	GitSide  string  `json:"git_counterpart"`
	Git      stats   `json:"git"`
	Ratio    float64 `json:"ratio"` // gitfs median / git median: lower is better
	Target   string  `json:"target"`
	RSSMiB   float64 `json:"daemon_peak_rss_mib"`
	Note     string  `json:"note,omitempty"`
}

// stats summarizes one side's samples.
type stats struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Samples []float64 `json:"samples"`
}

func summarize(xs []float64) stats {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return stats{Median: median(xs), Min: s[0], Max: s[len(s)-1], Samples: xs}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *result) finish() {
	if r.Unit == "" {
		r.Unit = "s"
	}
	if r.Git.Median > 0 {
		r.Ratio = r.Gitfs.Median / r.Git.Median
	}
}

func timeNow() time.Time { return time.Now() }

func sinceSeconds(t time.Time) float64 { return time.Since(t).Seconds() }

func fmtStats(s stats, unit string) string {
	f := func(x float64) string {
		if unit == "s" {
			return fmt.Sprintf("%.3f", x)
		}
		return fmt.Sprintf("%.0f", x)
	}
	if len(s.Samples) == 1 {
		return f(s.Median) + " " + unit
	}
	return fmt.Sprintf("%s %s (%s–%s)", f(s.Median), unit, f(s.Min), f(s.Max))
}

// printTable writes the results as a Markdown table.
func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| scenario | tree | gitfs: median (min–max) | git counterpart | git: median (min–max) | ratio | target | daemon peak RSS | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | **%.2f** | %s | %.0f MiB | %s |\n",
			r.Scenario, r.Tree, fmtStats(r.Gitfs, r.Unit), r.GitSide, fmtStats(r.Git, r.Unit), r.Ratio, r.Target, r.RSSMiB,
			strings.ReplaceAll(r.Note, "|", "/"))
	}
}
