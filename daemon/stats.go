package daemon

import (
	"context"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/gitfs/gitfs/internal/version"
)

// GET /v1/stats: the daemon's metrics (metrics.go) as JSON, for `gitfs
// stats`. Every caller sees the aggregate numbers, which name no
// repository, workspace or user, and their own workspaces; root (and the
// daemon's own user) also sees each repository's fetch state.

// StatsResponse is what GET /v1/stats answers.
type StatsResponse struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	Mountpoint string    `json:"mountpoint"`
	Scope      string    `json:"scope"` // "all" (root) or "user": aggregate numbers and your own
	Time       time.Time `json:"time"`
	// Metrics are the gitfs_* samples of the Prometheus endpoint, gathered
	// at Time.
	Metrics []Sample  `json:"metrics"`
	Yours   YourStats `json:"yours"`
	// Repos is each mirror's fetch state; scope "all" only.
	Repos []RepoStats `json:"repos,omitempty"`
}

// Sample is one metric series: a counter's or gauge's value, or a
// histogram's count (Value), sum and cumulative buckets.
type Sample struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Value   float64           `json:"value"`
	Sum     *float64          `json:"sum,omitempty"`
	Buckets []Bucket          `json:"buckets,omitempty"`
}

// Bucket is a histogram's cumulative count of observations <= LE.
type Bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// YourStats is what the caller owns.
type YourStats struct {
	UID        uint32   `json:"uid"`
	Workspaces []string `json:"workspaces"`
}

// RepoStats is one mirror's fetch state.
type RepoStats struct {
	Name       string    `json:"name"`
	LastFetch  time.Time `json:"last_fetch"`
	LastError  string    `json:"last_error,omitempty"`
	Workspaces int       `json:"workspaces"`
}

func (d *Daemon) statsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, func() (any, error) { return d.stats(r.Context()) })
	})
}

func (d *Daemon) stats(ctx context.Context) (StatsResponse, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return StatsResponse{}, err
	}
	all := p.uid == 0 || p.uid == uint32(os.Geteuid())
	out := StatsResponse{Version: version.Short(), PID: os.Getpid(), Mountpoint: d.cfg.Mountpoint, Scope: "user",
		Time: time.Now().UTC(), Metrics: []Sample{}, Yours: YourStats{UID: p.uid, Workspaces: []string{}}}
	if all {
		out.Scope = "all"
	}
	if d.metrics != nil {
		fams, err := d.metrics.reg.Gather()
		if err != nil {
			return StatsResponse{}, err
		}
		out.Metrics = samples(fams)
	}
	byRepo := map[string]int{}
	for _, w := range d.fs.List() {
		byRepo[w.Repo]++
		if w.UID == p.uid {
			out.Yours.Workspaces = append(out.Yours.Workspaces, w.Name)
		}
	}
	sort.Strings(out.Yours.Workspaces)
	if all {
		infos, err := d.cfg.Mirrors.List(ctx)
		if err != nil {
			return StatsResponse{}, err
		}
		for _, in := range infos {
			out.Repos = append(out.Repos, RepoStats{Name: in.Name, LastFetch: in.LastFetch, LastError: in.LastError, Workspaces: byRepo[in.Name]})
		}
	}
	return out, nil
}

// samples flattens the gitfs_* families (not the Go runtime's and the
// process's, which are for Prometheus).
func samples(fams []*dto.MetricFamily) []Sample {
	out := []Sample{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "gitfs_") {
			continue
		}
		for _, m := range f.GetMetric() {
			s := Sample{Name: f.GetName()}
			if len(m.GetLabel()) > 0 {
				s.Labels = map[string]string{}
				for _, l := range m.GetLabel() {
					s.Labels[l.GetName()] = l.GetValue()
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.Value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.Value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				s.Value = float64(h.GetSampleCount())
				sum := h.GetSampleSum()
				s.Sum = &sum
				for _, b := range h.GetBucket() {
					s.Buckets = append(s.Buckets, Bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
				}
			default:
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// Stats asks the daemon for its metrics.
func (c *Client) Stats(ctx context.Context) (StatsResponse, error) {
	var out StatsResponse
	err := c.do(ctx, http.MethodGet, "/v1/stats", nil, &out)
	return out, err
}

// DaemonStatus is GET /v1/status.
type DaemonStatus struct {
	Root       string `json:"root"`
	Mountpoint string `json:"mountpoint"`
	PID        int    `json:"pid"`
}

// Running asks the daemon whether it runs, and where.
func (c *Client) Running(ctx context.Context) (DaemonStatus, error) {
	var out DaemonStatus
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &out)
	return out, err
}
