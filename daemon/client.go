package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
)

// ErrNotRunning reports that no daemon serves the root.
var ErrNotRunning = errors.New("gitfs is not running")

// Client talks to a daemon over ROOT/gitfs.sock.
type Client struct {
	sock string
	http *http.Client
}

// NewClient returns a client for the daemon serving root.
func NewClient(root string) *Client {
	sock := filepath.Join(root, SocketName)
	return &Client{
		sock: sock,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		}},
	}
}

// RequestError is a request the daemon refused, with its reasons.
type RequestError struct {
	Msg       string
	Kind      string
	Conflicts []string
}

func (e *RequestError) Error() string {
	if len(e.Conflicts) > 0 && !strings.Contains(e.Msg, e.Conflicts[0]) {
		return fmt.Sprintf("%s: %s", e.Msg, strings.Join(e.Conflicts, ", "))
	}
	return e.Msg
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://gitfs"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Name a command that works as given: serve needs its mount
		// point, and the root this client used.
		return fmt.Errorf("%w: no daemon answers at %s; start one with: gitfs --root %s serve --mountpoint DIR", ErrNotRunning, c.sock, filepath.Dir(c.sock))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("daemon: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			return fmt.Errorf("daemon: %s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		return &RequestError{Msg: eb.Error, Kind: eb.Kind, Conflicts: eb.Conflicts}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("daemon: bad answer: %w", err)
		}
	}
	return nil
}

// Create makes a workspace and returns where it is mounted.
func (c *Client) Create(ctx context.Context, req CreateRequest) (CreateResponse, error) {
	var out CreateResponse
	err := c.do(ctx, http.MethodPost, "/v1/workspaces", req, &out)
	return out, err
}

// List returns every workspace.
func (c *Client) List(ctx context.Context) ([]Workspace, error) {
	var out []Workspace
	err := c.do(ctx, http.MethodGet, "/v1/workspaces", nil, &out)
	return out, err
}

// Remove deletes a workspace and its changes.
func (c *Client) Remove(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/workspaces/"+url.PathEscape(name), nil, nil)
}

// Status lists a workspace's changes against its commit.
func (c *Client) Status(ctx context.Context, name string) ([]Change, error) {
	var out []Change
	err := c.do(ctx, http.MethodGet, "/v1/workspaces/"+url.PathEscape(name)+"/status", nil, &out)
	return out, err
}

// Update moves a workspace to another commit.
func (c *Client) Update(ctx context.Context, name string, req UpdateRequest) (UpdateResponse, error) {
	var out UpdateResponse
	err := c.do(ctx, http.MethodPost, "/v1/workspaces/"+url.PathEscape(name)+"/update", req, &out)
	return out, err
}

// Export writes a workspace to a real directory.
func (c *Client) Export(ctx context.Context, name string, req ExportRequest) (ExportResponse, error) {
	var out ExportResponse
	err := c.do(ctx, http.MethodPost, "/v1/workspaces/"+url.PathEscape(name)+"/export", req, &out)
	return out, err
}
