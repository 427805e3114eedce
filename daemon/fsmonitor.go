//go:build linux

package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/gitfs/gitfs/mirror"
)

// ChangesResponse answers git's fsmonitor for a workspace (GET
// /v1/workspaces/NAME/changes?since=TOKEN): the paths changed since the
// token, or Full when git must look at everything.
type ChangesResponse struct {
	Token string   `json:"token"`
	Paths []string `json:"paths,omitempty"`
	Full  bool     `json:"full,omitempty"`
}

// maxTokenLen bounds the token a request carries.
const maxTokenLen = 256

func (d *Daemon) changes(ctx context.Context, name, token string) (ChangesResponse, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return ChangesResponse{}, err
	}
	if len(token) > maxTokenLen {
		return ChangesResponse{}, usageError{fmt.Errorf("token of %d bytes: at most %d", len(token), maxTokenLen)}
	}
	if _, err := d.find(p, name); err != nil {
		return ChangesResponse{}, err
	}
	next, paths, full, err := d.fs.Changes(name, token)
	if err != nil {
		return ChangesResponse{}, err
	}
	return ChangesResponse{Token: next, Paths: paths, Full: full}, nil
}

func (d *Daemon) changesRoute(w http.ResponseWriter, r *http.Request) {
	respond(w, http.StatusOK, func() (any, error) {
		return d.changes(r.Context(), r.PathValue("name"), r.URL.Query().Get("since"))
	})
}

// Changes asks which paths of workspace name changed since token.
func (c *Client) Changes(ctx context.Context, name, token string) (ChangesResponse, error) {
	var out ChangesResponse
	err := c.do(ctx, http.MethodGet, "/v1/workspaces/"+url.PathEscape(name)+"/changes?since="+url.QueryEscape(token), nil, &out)
	return out, err
}

// fsmonitorHook is the command a workspace's git runs as its fsmonitor
// hook (core.fsmonitor): this binary, asking this daemon; "" when git
// should not use one (Config.FSMonitor).
func (d *Daemon) fsmonitorHook() string {
	switch d.cfg.FSMonitor {
	case "off":
		return ""
	case "on":
	default:
		if !mirror.GitAtLeast(2, 43) {
			return ""
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return shellQuote(exe) + " --root " + shellQuote(d.cfg.Root) + " fsmonitor"
}

// shellQuote quotes s for sh, which git runs hooks with.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
