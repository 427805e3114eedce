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
