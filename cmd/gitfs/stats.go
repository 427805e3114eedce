package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
)

func init() {
	var asJSON bool
	register(&command{
		name: "stats", maxArgs: 0,
		summary: "show what the daemon is doing: requests, latencies, caches, fetches",
		help: `Prints the numbers 'serve --metrics-addr' serves to Prometheus, read over the
control socket: FUSE requests by operation with latency percentiles, blob
reads by source, cache hits, files pushed into the page cache before a
read, snapshots, leases, workspaces, fetches and the materializer's rate.
Everyone sees these totals and their own workspaces; root also sees each
repository's last fetch and its error.

Examples:
  gitfs stats
  gitfs stats --json | jq '.metrics[] | select(.name == "gitfs_workspaces")'`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the daemon's answer as JSON")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			st, err := daemon.NewClient(e.root).Stats(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, st)
			}
			printStats(e.stdout, st)
			return nil
		},
	})
}

// writeJSON is every --json output: indented, one value.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// statSet finds samples by name and labels.
type statSet []daemon.Sample

// get is the value of the series name with labels kv (pairs), 0 if absent.
func (s statSet) get(name string, kv ...string) float64 {
	if smp := s.find(name, kv...); smp != nil {
		return smp.Value
	}
	return 0
}

func (s statSet) find(name string, kv ...string) *daemon.Sample {
	for i := range s {
		if s[i].Name != name {
			continue
		}
		ok := true
		for j := 0; j+1 < len(kv); j += 2 {
			if s[i].Labels[kv[j]] != kv[j+1] {
				ok = false
			}
		}
		if ok {
			return &s[i]
		}
	}
	return nil
}

// label lists the values label takes in the series called name.
func (s statSet) label(name, label string) []string {
	var out []string
	for _, smp := range s {
		if smp.Name == name {
			if v, ok := smp.Labels[label]; ok && !contains(out, v) {
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printStats(w io.Writer, st daemon.StatsResponse) {
	s := statSet(st.Metrics)
	up := time.Duration(s.get("gitfs_uptime_seconds") * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(w, "gitfs %s, pid %d, serving %s for %s (scope: %s)\n\n", st.Version, st.PID, st.Mountpoint, up, st.Scope)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	yours := "none"
	if len(st.Yours.Workspaces) > 0 {
		yours = strings.Join(st.Yours.Workspaces, ", ")
	}
	fmt.Fprintf(tw, "workspaces\t%.0f (yours: %s)\n", s.get("gitfs_workspaces"), yours)
	fmt.Fprintf(tw, "snapshots\t%.0f published, %.0f open, %.0f leases held\n",
		s.get("gitfs_snapshots"), s.get("gitfs_snapshots_open"), s.get("gitfs_snapshot_leases"))
	fetches := s.find("gitfs_fetch_duration_seconds")
	if fetches != nil && fetches.Value > 0 {
		fmt.Fprintf(tw, "fetches\t%.0f, %.0f failed, mean %s\n", fetches.Value, s.get("gitfs_fetch_failures_total"),
			seconds(*fetches.Sum/fetches.Value))
	} else {
		fmt.Fprintf(tw, "fetches\tnone\n")
	}
	var blobs []string
	for _, src := range []string{"memory", "contents", "blobfile", "packs"} {
		blobs = append(blobs, fmt.Sprintf("%s %.0f (%s)", src, s.get("gitfs_blob_reads_total", "source", src),
			mib(s.get("gitfs_blob_read_bytes_total", "source", src))))
	}
	fmt.Fprintf(tw, "blobs opened\t%s\n", strings.Join(blobs, ", "))
	fmt.Fprintf(tw, "lower reads\t%.0f (%s), %.0f files pushed before a read, %.0f copy-ups\n", s.get("gitfs_lower_reads_total"),
		mib(s.get("gitfs_lower_read_bytes_total")), s.get("gitfs_pushed_files_total"), s.get("gitfs_copy_ups_total"))
	var caches []string
	for _, c := range s.label("gitfs_cache_hits_total", "cache") {
		caches = append(caches, fmt.Sprintf("%s %.0f hits, %.0f misses, %.0f evicted", c, s.get("gitfs_cache_hits_total", "cache", c),
			s.get("gitfs_cache_misses_total", "cache", c), s.get("gitfs_cache_evictions_total", "cache", c)))
	}
	fmt.Fprintf(tw, "caches\t%s\n", strings.Join(caches, "; "))
	if runs := s.get("gitfs_materialize_runs_total"); runs > 0 {
		fmt.Fprintf(tw, "exports\t%.0f, %.0f files (%s), last %.0f files/s\n", runs, s.get("gitfs_materialize_files_total"),
			mib(s.get("gitfs_materialize_bytes_total")), s.get("gitfs_materialize_files_per_second"))
	} else {
		fmt.Fprintf(tw, "exports\tnone\n")
	}
	tw.Flush()

	ops := s.label("gitfs_fuse_request_duration_seconds", "op")
	fmt.Fprintln(w)
	if len(ops) == 0 {
		fmt.Fprintln(w, "FUSE requests: none yet")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "FUSE OP\tREQUESTS\tERRORS\tMEAN\tP50\tP99\t")
		for _, op := range ops {
			h := s.find("gitfs_fuse_request_duration_seconds", "op", op)
			errs := 0.0
			for _, smp := range s {
				if smp.Name == "gitfs_fuse_request_errors_total" && smp.Labels["op"] == op {
					errs += smp.Value
				}
			}
			mean := 0.0
			if h.Value > 0 && h.Sum != nil {
				mean = *h.Sum / h.Value
			}
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%s\t%s\t%s\t\n", op, h.Value, errs, seconds(mean), quantile(h, 0.5), quantile(h, 0.99))
		}
		tw.Flush()
	}
	if len(st.Repos) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REPO\tLAST-FETCH\tWORKSPACES\tLAST-ERROR")
		for _, r := range st.Repos {
			last := "never"
			if !r.LastFetch.IsZero() {
				last = r.LastFetch.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Name, last, r.Workspaces, orDash(r.LastError))
		}
		tw.Flush()
	}
}

// quantile estimates the q-quantile of a histogram as Prometheus's
// histogram_quantile does: linearly within the bucket that holds it. In
// the last, unbounded bucket it can only say "above" the last bound.
func quantile(h *daemon.Sample, q float64) string {
	if h == nil || h.Value == 0 || len(h.Buckets) == 0 {
		return "-"
	}
	rank := q * h.Value
	lower, below := 0.0, uint64(0)
	for _, b := range h.Buckets {
		if float64(b.Count) >= rank {
			if math.IsInf(b.LE, 1) {
				return ">" + seconds(lower)
			}
			in := float64(b.Count - below)
			if in == 0 {
				return seconds(b.LE)
			}
			return seconds(lower + (b.LE-lower)*(rank-float64(below))/in)
		}
		lower, below = b.LE, b.Count
	}
	return ">" + seconds(lower)
}

func seconds(s float64) string {
	switch {
	case s < 1e-3:
		return fmt.Sprintf("%.0fµs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.1fms", s*1e3)
	}
	return fmt.Sprintf("%.2fs", s)
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
