package daemon

import (
	"context"
	"net/http"
	"time"
)

// GET /v1/stats: the daemon's metrics (metrics_linux.go) as JSON, for `gitfs
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
