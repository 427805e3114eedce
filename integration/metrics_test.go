package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/daemon"
	"github.com/gitfs/gitfs/internal/gittest"
)

// The test 3: the metrics endpoint answers with the metrics
// listed, and `gitfs stats` agrees with it.

var metricsURL = regexp.MustCompile(`metrics at (http://\S+/metrics)`)

// scrape reads a Prometheus text exposition into series -> value, a series
// written as the text writes it: name{label="value",...}.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// seriesKey writes a stats sample's series as the text exposition does
// (labels sorted by name); a histogram is compared by its _count.
func seriesKey(s daemon.Sample) string {
	name := s.Name
	if s.Sum != nil {
		name += "_count"
	}
	if len(s.Labels) == 0 {
		return name
	}
	var kv []string
	for k, v := range s.Labels {
		kv = append(kv, k+`="`+v+`"`)
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

func statsJSON(t *testing.T, r result) daemon.StatsResponse {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("gitfs stats --json: exit %d: %s", r.code, r.stderr)
	}
	var st daemon.StatsResponse
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("gitfs stats --json: %v: %s", err, r.stdout)
	}
	return st
}

func TestMetricsEndpointAndStatsAgree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	repo, _ := newRemote(t, 60, 31)
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	d := serve(t, root, "", "--metrics-addr", "127.0.0.1:0")
	m := metricsURL.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("serve does not say where its metrics are:\n%s", d.stderr.String())
	}
	url := m[1]

	// Work for every kind of metric: reads, a write, a fetch that works
	// and one that fails, an export.
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	filepath.WalkDir(ws, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() {
			os.ReadFile(p)
		}
		return nil
	})
	if err := os.WriteFile(filepath.Join(ws, "new.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo.Commit(t, "main", "second", gittest.Generate(61, 31))
	mustGitfs(t, root, "ws", "update", "w", "--fetch")
	moved := repo.Dir + ".moved"
	if err := os.Rename(repo.Dir, moved); err != nil {
		t.Fatal(err)
	}
	if r := gitfs(t, root, "ws", "update", "w", "--fetch"); r.code == 0 {
		t.Fatal("fetch from a remote that is gone succeeded")
	}
	if err := os.Rename(moved, repo.Dir); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "ws", "export", "w", filepath.Join(t.TempDir(), "export"))

	before := scrape(t, url)
	st := statsJSON(t, gitfs(t, root, "stats", "--json"))
	after := scrape(t, url)

	for _, want := range []string{
		`gitfs_fuse_request_duration_seconds_count{op="lookup"}`,
		`gitfs_fuse_request_duration_seconds_count{op="read"}`,
		`gitfs_fuse_request_duration_seconds_count{op="create"}`,
		`gitfs_cache_hits_total{cache="trees"}`,
		`gitfs_cache_misses_total{cache="blobs"}`,
		`gitfs_cache_evictions_total{cache="blobs"}`,
		`gitfs_snapshots`,
		`gitfs_snapshot_leases`,
		`gitfs_workspaces`,
		`gitfs_fetch_duration_seconds_count`,
		`gitfs_fetch_failures_total`,
		`gitfs_materialize_files_total`,
		`gitfs_materialize_files_per_second`,
	} {
		v, ok := before[want]
		if !ok {
			t.Errorf("metrics lack %s", want)
			continue
		}
		if v <= 0 && want != `gitfs_cache_evictions_total{cache="blobs"}` {
			t.Errorf("%s = %v after the work that counts it", want, v)
		}
	}
	// Which source serves a read depends on whether the background fill
	// stored the blob first: what must hold is that reads are counted.
	var reads, readBytes float64
	for _, src := range []string{"memory", "blobfile", "packs"} {
		reads += before[`gitfs_blob_reads_total{source="`+src+`"}`]
		readBytes += before[`gitfs_blob_read_bytes_total{source="`+src+`"}`]
	}
	if reads <= 0 || readBytes <= 0 {
		t.Errorf("blob reads %v (%v bytes) over every source after reading the tree", reads, readBytes)
	}
	if before[`gitfs_fetch_duration_seconds_count`] != 2 || before[`gitfs_fetch_failures_total`] != 1 {
		t.Errorf("fetches %v, failures %v; want 2 and 1", before[`gitfs_fetch_duration_seconds_count`], before[`gitfs_fetch_failures_total`])
	}
	if before[`gitfs_workspaces`] != 1 {
		t.Errorf("gitfs_workspaces = %v, want 1", before[`gitfs_workspaces`])
	}

	// gitfs stats shows the same series, with values between two scrapes
	// taken around it (the kernel may still send a request or two).
	if len(st.Metrics) == 0 {
		t.Fatal("gitfs stats shows no metrics")
	}
	seen := 0
	for _, s := range st.Metrics {
		key := seriesKey(s)
		if s.Name == "gitfs_uptime_seconds" || s.Name == "gitfs_build_info" || s.Name == "gitfs_materialize_files_per_second" {
			continue
		}
		lo, ok1 := before[key]
		hi, ok2 := after[key]
		if !ok1 || !ok2 {
			if !ok2 {
				t.Errorf("gitfs stats shows %s, the endpoint does not", key)
			}
			continue // a series that appeared between the scrapes
		}
		if s.Value < lo || s.Value > hi {
			t.Errorf("%s: gitfs stats says %v, the endpoint %v then %v", key, s.Value, lo, hi)
		}
		seen++
	}
	for key := range before {
		if strings.HasPrefix(key, "gitfs_fuse_request_duration_seconds_count") || strings.HasPrefix(key, "gitfs_blob_reads_total") {
			found := false
			for _, s := range st.Metrics {
				found = found || seriesKey(s) == key
			}
			if !found {
				t.Errorf("the endpoint has %s, gitfs stats does not", key)
			}
		}
	}
	// The last fetch was the failed one: root sees why.
	if st.Scope != "all" || len(st.Repos) != 1 || st.Repos[0].Name != "demo" || st.Repos[0].LastError == "" {
		t.Errorf("root's stats: scope %q, repos %+v", st.Scope, st.Repos)
	}
	text := mustGitfs(t, root, "stats")
	for _, want := range []string{"workspaces", "FUSE OP", "lookup", "demo"} {
		if !strings.Contains(text, want) {
			t.Errorf("gitfs stats lacks %q:\n%s", want, text)
		}
	}
	t.Logf("%d series agree", seen)
}

// TestStatsShowUsersAggregatesOnly: any local user may ask for stats, and
// sees the totals and their own workspaces, never another user's
// repositories or workspaces.
func TestStatsShowUsersAggregatesOnly(t *testing.T) {
	h := newSharedHost(t)
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("ws create as nobody: %s", r.stderr)
	}
	mustGitfs(t, h.root, "ws", "create", "roots", "--repo", "private", "--rev", "main")

	r := h.asNobody(t, "stats", "--json")
	st := statsJSON(t, r)
	if st.Scope != "user" || len(st.Repos) != 0 {
		t.Errorf("nobody's stats: scope %q, repos %+v", st.Scope, st.Repos)
	}
	if len(st.Yours.Workspaces) != 1 || st.Yours.Workspaces[0] != "mine" || st.Yours.UID != nobodyID {
		t.Errorf("nobody's own: %+v", st.Yours)
	}
	for _, secret := range []string{"private", "roots"} {
		if strings.Contains(r.stdout, secret) {
			t.Errorf("nobody's stats mention %q:\n%s", secret, r.stdout)
		}
	}
	found := false
	for _, s := range st.Metrics {
		if s.Name == "gitfs_workspaces" {
			found = true
			if s.Value != 2 {
				t.Errorf("gitfs_workspaces = %v, want 2 (a total)", s.Value)
			}
		}
	}
	if !found {
		t.Error("nobody's stats lack the totals")
	}
	root := statsJSON(t, gitfs(t, h.root, "stats", "--json"))
	if root.Scope != "all" || len(root.Repos) != 2 {
		t.Errorf("root's stats: scope %q, repos %+v", root.Scope, root.Repos)
	}
}
