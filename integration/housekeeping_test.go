package integration

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// Housekeeping as a CI host runs it: gc with a TTL, the daemon's timer,
// df, repo rm and repo add --refs.

// ageSnapshot makes commit's snapshot under root look last used d ago.
func ageSnapshot(t *testing.T, root, commit string, d time.Duration) {
	t.Helper()
	past := time.Now().Add(-d)
	for _, p := range []string{
		filepath.Join(root, "snapshots", commit, "meta.json"),
		filepath.Join(root, "locks", "snapshot-"+commit+".lease"),
	} {
		if err := os.Chtimes(p, past, past); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGCSnapshotTTL(t *testing.T) {
	repo, first := newRemote(t, 20, 61)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	second := repo.Commit(t, "main", "second", gittest.Generate(21, 61))
	mustGitfs(t, root, "repo", "fetch", "demo")
	out := t.TempDir()
	mustGitfs(t, root, "checkout", "demo", first, filepath.Join(out, "a"))
	mustGitfs(t, root, "checkout", "demo", second, filepath.Join(out, "b"))
	ageSnapshot(t, root, first, 48*time.Hour)
	ageSnapshot(t, root, second, time.Hour)

	if got := mustGitfs(t, root, "gc", "--snapshot-ttl", "24h"); !strings.Contains(got, "removed 1 snapshot") {
		t.Errorf("gc --snapshot-ttl 24h: %s", got)
	}
	if got := publishedSnapshots(t, root); len(got) != 1 || got[0] != second {
		t.Fatalf("after gc --snapshot-ttl 24h: %v, want only %s", got, second)
	}
	// Used again by a checkout, it is young again.
	ageSnapshot(t, root, second, 48*time.Hour)
	mustGitfs(t, root, "checkout", "demo", second, filepath.Join(out, "c"))
	mustGitfs(t, root, "gc", "--snapshot-ttl", "24h")
	if got := publishedSnapshots(t, root); len(got) != 1 {
		t.Fatalf("a snapshot checked out just now was removed: %v", got)
	}
	var r struct {
		Snapshots []string `json:"snapshots"`
	}
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "gc", "--json")), &r); err != nil || len(r.Snapshots) != 1 {
		t.Errorf("gc --json without a TTL: %+v, %v", r, err)
	}
	if res := gitfs(t, root, "gc", "--snapshot-ttl", "-1h"); res.code != 2 {
		t.Errorf("negative TTL: exit %d, %s", res.code, res.stderr)
	}
}

// TestServeGCInterval: the daemon's timer collects the snapshot of a
// removed workspace while another workspace, however old its snapshot,
// keeps reading.
func TestServeGCInterval(t *testing.T) {
	repo, first := newRemote(t, 20, 62)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	second := repo.Commit(t, "main", "second", gittest.Generate(21, 62))
	mustGitfs(t, root, "repo", "fetch", "demo")
	d := serve(t, root, "", "--gc-interval", "100ms", "--snapshot-ttl", "1h", "--gc-no-mirrors", "--metrics-addr", "127.0.0.1:0")
	keep := wsCreate(t, root, "keep", "--repo", "demo", "--rev", first)
	wsCreate(t, root, "gone", "--repo", "demo", "--rev", second)
	mustGitfs(t, root, "ws", "rm", "gone")
	ageSnapshot(t, root, first, 48*time.Hour)
	ageSnapshot(t, root, second, 48*time.Hour)
	deadline := time.Now().Add(time.Minute)
	for slices.Contains(publishedSnapshots(t, root), second) {
		if time.Now().After(deadline) {
			t.Fatalf("the timer never collected the removed workspace's snapshot:\n%s", d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !slices.Contains(publishedSnapshots(t, root), first) {
		t.Fatal("the timer removed a mounted workspace's snapshot")
	}
	if diff := gittest.Diff(gittest.Archive(t, repo.Dir, first), gittest.ReadDir(t, keep, ".git"), 10); len(diff) > 0 {
		t.Fatalf("the kept workspace after the timer's gc: %v", diff)
	}
	m := metricsURL.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatal("no metrics address")
	}
	if got := scrape(t, m[1]); got[`gitfs_gc_runs_total{result="ok"}`] < 1 || got[`gitfs_gc_snapshots_removed_total`] < 1 {
		t.Errorf("gc metrics: runs %v, removed %v", got[`gitfs_gc_runs_total{result="ok"}`], got[`gitfs_gc_snapshots_removed_total`])
	}
}

func TestDF(t *testing.T) {
	repo, first := newRemote(t, 30, 63)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	mustGitfs(t, root, "checkout", "demo", first, filepath.Join(t.TempDir(), "out"))
	text := mustGitfs(t, root, "df")
	for _, want := range []string{"mirrors", "demo", "snapshots", "1 snapshot(s)", "shared with mirrors", "snapshot contents", "workspaces", "total", "free of"} {
		if !strings.Contains(text, want) {
			t.Errorf("gitfs df lacks %q:\n%s", want, text)
		}
	}
	var u struct {
		Total int64 `json:"total"`
		Parts []struct {
			Name  string `json:"name"`
			Bytes int64  `json:"bytes"`
		} `json:"parts"`
	}
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "df", "--json")), &u); err != nil || u.Total == 0 || len(u.Parts) < 5 {
		t.Errorf("gitfs df --json: %+v, %v", u, err)
	}
}

func TestRepoRm(t *testing.T) {
	repo, _ := newRemote(t, 10, 64)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	ws := wsCreate(t, root, "w", "--repo", "demo", "--rev", "main")
	r := gitfs(t, root, "repo", "rm", "demo")
	if r.code == 0 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "workspace(s) w") {
		t.Fatalf("repo rm of a repository a workspace uses: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.ReadDir(ws); err != nil {
		t.Fatalf("the workspace after a refused rm: %v", err)
	}
	mustGitfs(t, root, "ws", "rm", "w")
	mustGitfs(t, root, "repo", "rm", "demo")
	if _, err := os.Stat(filepath.Join(root, "mirrors", "demo.git")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mirror left after repo rm: %v", err)
	}
	if got := mustGitfs(t, root, "repo", "list"); strings.Contains(got, "demo") {
		t.Errorf("repo list after rm:\n%s", got)
	}
	if r := gitfs(t, root, "repo", "rm", "demo"); r.code == 0 || !strings.Contains(r.stderr, "no such repository") {
		t.Errorf("repo rm of a removed repository: exit %d: %s", r.code, r.stderr)
	}
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
}

// TestRepoAddRefs: --refs heads,tags mirrors neither refs/pull/* nor
// anything else, at add and at every fetch.
func TestRepoAddRefs(t *testing.T) {
	repo, first := newRemote(t, 10, 65)
	gittest.Git(t, repo.Dir, "tag", "v1")
	gittest.Git(t, repo.Dir, "update-ref", "refs/pull/7/head", first)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "gh", repo.Dir, "--refs", "heads,tags")
	mustGitfs(t, root, "repo", "add", "all", repo.Dir)
	refs := func(name string) string {
		return gittest.Git(t, filepath.Join(root, "mirrors", name+".git"), "for-each-ref", "--format=%(refname)")
	}
	if got := refs("gh"); strings.Contains(got, "refs/pull") || !strings.Contains(got, "refs/tags/v1") {
		t.Errorf("--refs heads,tags mirrored:\n%s", got)
	}
	if got := refs("all"); !strings.Contains(got, "refs/pull/7/head") {
		t.Errorf("the default mirrors every ref, got:\n%s", got)
	}
	gittest.Git(t, repo.Dir, "update-ref", "refs/pull/8/head", first)
	mustGitfs(t, root, "repo", "fetch", "gh")
	if got := refs("gh"); strings.Contains(got, "refs/pull") {
		t.Errorf("a fetch brought refs/pull:\n%s", got)
	}
	if got := strings.TrimSpace(mustGitfs(t, root, "rev-parse", "gh", "HEAD")); got != first {
		t.Errorf("HEAD of the heads,tags mirror: %s, want %s", got, first)
	}
	if r := gitfs(t, root, "repo", "add", "bad", repo.Dir, "--refs", "heads,pull/*"); r.code != 2 || !strings.Contains(r.stderr, "not a ref kind") {
		t.Errorf("bad --refs: exit %d: %s", r.code, r.stderr)
	}
	var infos []struct {
		Name string   `json:"name"`
		Refs []string `json:"refs"`
	}
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "repo", "list", "--json")), &infos); err != nil || len(infos) != 2 ||
		infos[1].Name != "gh" || strings.Join(infos[1].Refs, ",") != "heads,tags" || infos[0].Refs != nil {
		t.Errorf("repo list --json: %+v, %v", infos, err)
	}
}
