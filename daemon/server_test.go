//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/materialize"
	"github.com/gitfs/gitfs/mirror"

	"github.com/gitfs/gitfs/workspace"
)

// TestRespondMapsErrors: every failure class becomes the status and kind
// the CLI and curl users rely on; what is not classified is a 500.
func TestRespondMapsErrors(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		kind   string
	}{
		{usageError{errors.New("bad name")}, 400, "usage"},
		{forbidden("workspace x belongs to uid 0"), 403, "permission"},
		{fmt.Errorf("create: %w", workspace.ErrExists), 409, "exists"},
		{fmt.Errorf("x: %w", os.ErrExist), 409, "exists"},
		{fmt.Errorf("ws: %w", workspace.ErrNotFound), 404, "not_found"},
		{fmt.Errorf("repo: %w", mirror.ErrNotFound), 404, "not_found"},
		{fmt.Errorf("rev: %w", mirror.ErrUnknownRev), 404, "not_found"},
		{fmt.Errorf("rev: %w", mirror.ErrAmbiguousRev), 400, "usage"},
		{&mirror.ConflictError{Paths: []string{"a"}}, 409, "conflict"},
		{&workspace.ConflictError{Workspace: "w", Paths: []string{"b"}}, 409, "conflict"},
		{fmt.Errorf("checkout: %w", &materialize.RefusedError{Path: ".git", Rule: "name is .git"}), 422, "refused"},
		{context.Canceled, 499, "canceled"},
		{errors.New("disk on fire"), 500, "internal"},
	} {
		rec := httptest.NewRecorder()
		respond(rec, http.StatusOK, func() (any, error) { return nil, c.err })
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %q: %v", c.err, rec.Body, err)
		}
		if rec.Code != c.status || body.Kind != c.kind || body.Error == "" {
			t.Errorf("%v: %d %q %q, want %d %q", c.err, rec.Code, body.Kind, body.Error, c.status, c.kind)
		}
	}
}

// TestReadJSONIsStrict: one object of known fields, nothing after it.
func TestReadJSONIsStrict(t *testing.T) {
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"name":"a","repo":"r","rev":"main"}`, true},
		{` {"name":"a"}  ` + "\n", true},
		{`{"name":"a"} x`, false},
		{`{"name":"a"}{"name":"b"}`, false},
		{`{"name":"a","evil":true}`, false},
		{`[]`, false},
		{``, false},
		{`{"name":` + strings.Repeat(" ", 2<<20) + `"a"}`, false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/v1/workspaces", strings.NewReader(c.body))
		var v CreateRequest
		if got := readJSON(rec, req, &v); got != c.ok {
			t.Errorf("%.40q: accepted %v, want %v", c.body, got, c.ok)
		}
		if !c.ok && rec.Code != http.StatusBadRequest {
			t.Errorf("%.40q: status %d, want 400", c.body, rec.Code)
		}
	}
}

// TestCheckElement: an export target is one new name.
func TestCheckElement(t *testing.T) {
	for name, ok := range map[string]bool{"out": true, "a.b": true, "": false, ".": false, "..": false, "a/b": false, "/": false, "a\x00": false, strings.Repeat("x", 256): false} {
		if got := checkElement(name) == nil; got != ok {
			t.Errorf("checkElement(%q) ok=%v, want %v", name, got, ok)
		}
	}
}

// TestOwnership: a workspace gets its creator, the repository's group when
// the creator is in it, and no wider mode than the repository.
func TestOwnership(t *testing.T) {
	g := uint32(500)
	for _, c := range []struct {
		p              peer
		a              mirror.Access
		uid, gid, mode uint32
	}{
		{peer{uid: 1000, gid: 1000}, mirror.Access{Owner: 1000}, 1000, 1000, 0o700},
		{peer{uid: 1000, gid: 1000, groups: []uint32{500}}, mirror.Access{Owner: 0, Group: &g}, 1000, 500, 0o750},
		{peer{uid: 1000, gid: 500}, mirror.Access{Owner: 0, Group: &g}, 1000, 500, 0o750},
		{peer{uid: 1000, gid: 1000}, mirror.Access{Owner: 1000, Group: &g}, 1000, 1000, 0o750},
		{peer{uid: 1000, gid: 1000}, mirror.Access{Owner: 0, Public: true}, 1000, 1000, 0o755},
	} {
		uid, gid, mode := ownership(&c.p, c.a)
		if uid != c.uid || gid != c.gid || mode != c.mode {
			t.Errorf("ownership(%+v, %+v) = %d %d %o, want %d %d %o", c.p, c.a, uid, gid, mode, c.uid, c.gid, c.mode)
		}
	}
}
