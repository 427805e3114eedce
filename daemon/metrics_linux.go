package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/version"
	"github.com/gitfs/gitfs/snapshot"
)

// The daemon's metrics, in one Prometheus registry: what `serve
// --metrics-addr` serves and what `gitfs stats` prints (stats.go), so the
// two always agree. Events (FUSE requests, fetches, exports) are counted
// as they happen; levels and the counters other packages keep (the
// snapshot store's, the file system's) are read at each scrape.
//
// No metric has a label naming a repository, workspace or user: the
// endpoint may be scraped by anyone who reaches its address, and a user's
// `gitfs stats` shows these numbers too (authorization is in stats.go).

// fuseBuckets spans a cached getattr (microseconds) to a cold read of a
// large blob or a copy-up (seconds).
var fuseBuckets = prometheus.ExponentialBuckets(10e-6, 4, 11)

type metrics struct {
	d       *Daemon
	reg     *prometheus.Registry
	started time.Time

	fuseDur   *prometheus.HistogramVec // by op
	fuseErr   *prometheus.CounterVec   // by op, errno
	fetchDur  prometheus.Histogram
	fetchFail prometheus.Counter
	exports   prometheus.Counter
	matFiles  prometheus.Counter
	matBytes  prometheus.Counter
	matSecs   prometheus.Counter
	matRate   prometheus.Gauge
	gcRuns    *prometheus.CounterVec // by result
	gcRemoved prometheus.Counter
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{d: d, reg: prometheus.NewRegistry(), started: time.Now()}
	m.fuseDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gitfs_fuse_request_duration_seconds",
		Help:    "FUSE requests answered by the daemon (the kernel answers the rest from its caches), by operation: time in the handler.",
		Buckets: fuseBuckets,
	}, []string{"op"})
	m.fuseErr = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitfs_fuse_request_errors_total",
		Help: "FUSE requests answered with an error, by operation and errno (ENOENT for lookups of absent names is normal).",
	}, []string{"op", "errno"})
	m.fetchDur = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "gitfs_fetch_duration_seconds",
		Help:    "Fetches of mirrors run by the daemon (background and ws update --fetch), failed ones too.",
		Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
	})
	m.fetchFail = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_fetch_failures_total",
		Help: "Fetches run by the daemon that failed (repo list shows each mirror's last error).",
	})
	m.exports = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_materialize_runs_total",
		Help: "Workspaces written to a directory by the materializer (ws export).",
	})
	m.matFiles = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_materialize_files_total",
		Help: "Files the materializer wrote (ws export).",
	})
	m.matBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_materialize_bytes_total",
		Help: "Bytes of files the materializer wrote (ws export).",
	})
	m.matSecs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_materialize_seconds_total",
		Help: "Time the materializer spent writing (ws export): files_total / seconds_total is its rate.",
	})
	m.matRate = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "gitfs_materialize_files_per_second",
		Help: "Files per second of the last ws export.",
	})
	m.gcRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitfs_gc_runs_total",
		Help: "Housekeeping runs of serve --gc-interval, by result (ok, failed).",
	}, []string{"result"})
	m.gcRemoved = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitfs_gc_snapshots_removed_total",
		Help: "Snapshots removed by serve --gc-interval's housekeeping.",
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gitfs_build_info",
		Help:        "Always 1; its labels say which gitfs runs.",
		ConstLabels: prometheus.Labels{"version": version.Short()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.fuseDur, m.fuseErr, m.fetchDur, m.fetchFail, m.exports, m.matFiles, m.matBytes,
		m.matSecs, m.matRate, m.gcRuns, m.gcRemoved, buildInfo, levels{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observeFUSE is the file system's Observer.
func (m *metrics) observeFUSE(op string, took time.Duration, errno syscall.Errno) {
	m.fuseDur.WithLabelValues(op).Observe(took.Seconds())
	if errno != 0 {
		m.fuseErr.WithLabelValues(op, errnoName(errno)).Inc()
	}
}

// errnoName is the symbolic name of an errno (ENOENT), a bounded label.
func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno" + strconv.Itoa(int(e))
}

// observeFetch is the mirrors' OnFetch.
func (m *metrics) observeFetch(took time.Duration, err error) {
	m.fetchDur.Observe(took.Seconds())
	if err != nil {
		m.fetchFail.Inc()
	}
}

// observeExport counts one ws export.
func (m *metrics) observeExport(files, bytes int64, took time.Duration) {
	if m == nil {
		return
	}
	m.exports.Inc()
	m.matFiles.Add(float64(files))
	m.matBytes.Add(float64(bytes))
	m.matSecs.Add(took.Seconds())
	if took > 0 {
		m.matRate.Set(float64(files) / took.Seconds())
	}
}

// observeGC counts one housekeeping run.
func (m *metrics) observeGC(removed int, err error) {
	if err != nil {
		m.gcRuns.WithLabelValues("failed").Inc()
		return
	}
	m.gcRuns.WithLabelValues("ok").Inc()
	m.gcRemoved.Add(float64(removed))
}

// levels reads, at each scrape, the counters and levels other packages
// keep.
type levels struct{ m *metrics }

var (
	descBlobReads  = prometheus.NewDesc("gitfs_blob_reads_total", "Blobs opened for reading (workspace and browse reads), by where their bytes came from: memory cache, the snapshot's contents file, ROOT/blobs, or inflated from the packs.", []string{"source"}, nil)
	descBlobBytes  = prometheus.NewDesc("gitfs_blob_read_bytes_total", "Size of the blobs opened for reading, by source.", []string{"source"}, nil)
	descCacheHits  = prometheus.NewDesc("gitfs_cache_hits_total", "Hits of the snapshot store's memory caches (trees, blob sizes, small blobs).", []string{"cache"}, nil)
	descCacheMiss  = prometheus.NewDesc("gitfs_cache_misses_total", "Misses of the snapshot store's memory caches.", []string{"cache"}, nil)
	descCacheEvict = prometheus.NewDesc("gitfs_cache_evictions_total", "Entries evicted from the snapshot store's memory caches.", []string{"cache"}, nil)
	descSnapshots  = prometheus.NewDesc("gitfs_snapshots", "Published snapshots on disk.", nil, nil)
	descSnapOpen   = prometheus.NewDesc("gitfs_snapshots_open", "Snapshots the daemon has open.", nil, nil)
	descLeases     = prometheus.NewDesc("gitfs_snapshot_leases", "Snapshot leases the daemon holds (mounted workspaces, browse paths, exports and builds in progress).", nil, nil)
	descWorkspaces = prometheus.NewDesc("gitfs_workspaces", "Workspaces the daemon serves.", nil, nil)
	descLowerReads = prometheus.NewDesc("gitfs_lower_reads_total", "Reads of unchanged files that reached the daemon (the kernel's page cache answers the rest).", nil, nil)
	descLowerBytes = prometheus.NewDesc("gitfs_lower_read_bytes_total", "Bytes of those reads.", nil, nil)
	descCopyUps    = prometheus.NewDesc("gitfs_copy_ups_total", "Entries copied to a workspace's upper layer on first change.", nil, nil)
	descPushed     = prometheus.NewDesc("gitfs_pushed_files_total", "Unchanged files the daemon put into the kernel's page cache before they were read (each saves the READs a first read would send).", nil, nil)
	descUptime     = prometheus.NewDesc("gitfs_uptime_seconds", "Time since the daemon started.", nil, nil)
)

func (l levels) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(l, ch) }

func (l levels) Collect(ch chan<- prometheus.Metric) {
	m, d := l.m, l.m.d
	counter := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(descUptime, time.Since(m.started).Seconds())
	if st := d.cfg.Snapshots; st != nil {
		sm := st.Metrics()
		for src := snapshot.FromMemory; src <= snapshot.FromPacks; src++ {
			counter(descBlobReads, float64(sm.BlobOpens[src]), src.String())
			counter(descBlobBytes, float64(sm.BlobBytes[src]), src.String())
		}
		for _, c := range []struct {
			name string
			cm   snapshot.CacheMetrics
		}{{"trees", sm.Trees}, {"sizes", sm.Sizes}, {"blobs", sm.Blobs}} {
			counter(descCacheHits, float64(c.cm.Hits), c.name)
			counter(descCacheMiss, float64(c.cm.Misses), c.name)
			counter(descCacheEvict, float64(c.cm.Evictions), c.name)
		}
		gauge(descSnapshots, float64(sm.Published))
		gauge(descSnapOpen, float64(sm.Open))
		gauge(descLeases, float64(sm.Leases))
	}
	if d.fs != nil {
		gauge(descWorkspaces, float64(len(d.fs.List())))
		fst := d.fs.Stats()
		counter(descLowerReads, float64(fst.LowerReads))
		counter(descLowerBytes, float64(fst.LowerReadBytes))
		counter(descCopyUps, float64(fst.CopyUps))
		counter(descPushed, float64(fst.Pushed))
	}
}

// ServeMetrics serves the Prometheus metrics at http://addr/metrics until
// the returned stop is called. addr "127.0.0.1:0" picks a free port; the
// address listened on is returned.
func (d *Daemon) ServeMetrics(addr string) (net.Addr, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "gitfs: metrics at /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.cfg.Log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return ln.Addr(), stop, nil
}
