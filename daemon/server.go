//go:build linux

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/gitfs/gitfs/materialize"
	"github.com/gitfs/gitfs/mirror"

	"github.com/gitfs/gitfs/workspace"
)

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"root": d.cfg.Root, "mountpoint": d.cfg.Mountpoint, "pid": os.Getpid()})
	})
	mux.HandleFunc("GET /v1/workspaces", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, func() (any, error) { return d.list(r.Context()) })
	})
	mux.HandleFunc("POST /v1/workspaces", func(w http.ResponseWriter, r *http.Request) {
		var req CreateRequest
		if !readJSON(w, r, &req) {
			return
		}
		respond(w, http.StatusCreated, func() (any, error) { return d.create(r.Context(), req) })
	})
	mux.HandleFunc("DELETE /v1/workspaces/{name}", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, func() (any, error) { return struct{}{}, d.remove(r.Context(), r.PathValue("name")) })
	})
	mux.HandleFunc("GET /v1/workspaces/{name}", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, func() (any, error) {
			p, err := d.caller(r.Context())
			if err != nil {
				return nil, err
			}
			in, err := d.find(p, r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			return d.workspaceOf(in), nil
		})
	})
	mux.HandleFunc("GET /v1/workspaces/{name}/status", func(w http.ResponseWriter, r *http.Request) {
		respond(w, http.StatusOK, func() (any, error) {
			changes, err := d.status(r.Context(), r.PathValue("name"))
			if err != nil {
				return nil, err
			}
			out := make([]Change, 0, len(changes))
			for _, c := range changes {
				out = append(out, Change{Op: string(c.Op), Path: c.Path, From: c.From})
			}
			return out, nil
		})
	})
	mux.HandleFunc("GET /v1/workspaces/{name}/changes", d.changesRoute)
	mux.HandleFunc("POST /v1/workspaces/{name}/update", func(w http.ResponseWriter, r *http.Request) {
		var req UpdateRequest
		if !readJSON(w, r, &req) {
			return
		}
		respond(w, http.StatusOK, func() (any, error) { return d.update(r.Context(), r.PathValue("name"), req) })
	})
	mux.HandleFunc("POST /v1/workspaces/{name}/export", func(w http.ResponseWriter, r *http.Request) {
		var req ExportRequest
		if !readJSON(w, r, &req) {
			return
		}
		respond(w, http.StatusOK, func() (any, error) { return d.export(r.Context(), r.PathValue("name"), req) })
	})
	d.statsRoutes(mux)
	return mux
}

func (d *Daemon) workspaceOf(in workspace.Meta) Workspace {
	return Workspace{Meta: in, Path: d.cfg.Mountpoint + "/" + in.Name}
}

// readJSON decodes exactly one JSON object of at most 1 MiB with known
// fields only; anything after it is an error, not ignored.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: fmt.Sprintf("bad request body: %v", err), Kind: "usage"})
		return false
	}
	return true
}

// respond runs fn and answers with its result or a classified error.
func respond(w http.ResponseWriter, okStatus int, fn func() (any, error)) {
	v, err := fn()
	if err == nil {
		writeJSON(w, okStatus, v)
		return
	}
	body := errorBody{Error: err.Error(), Kind: "internal"}
	status := http.StatusInternalServerError
	var conflict interface{ ConflictPaths() []string }
	var usage usageError
	var refused *materialize.RefusedError
	switch {
	case errors.As(err, &conflict): // a merge's or an update's
		body.Kind, body.Conflicts, status = "conflict", conflict.ConflictPaths(), http.StatusConflict
	case errors.As(err, &usage), errors.Is(err, mirror.ErrAmbiguousRev):
		body.Kind, status = "usage", http.StatusBadRequest
	case errors.Is(err, errForbidden):
		body.Kind, status = "permission", http.StatusForbidden
	case errors.As(err, &refused):
		body.Kind, status = "refused", http.StatusUnprocessableEntity
	case errors.Is(err, os.ErrExist), errors.Is(err, workspace.ErrExists):
		body.Kind, status = "exists", http.StatusConflict
	case errors.Is(err, os.ErrNotExist), errors.Is(err, workspace.ErrNotFound), errors.Is(err, mirror.ErrNotFound), errors.Is(err, mirror.ErrUnknownRev):
		body.Kind, status = "not_found", http.StatusNotFound
	case errors.Is(err, context.Canceled):
		body.Kind, status = "canceled", 499
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// usageError marks a request that is wrong in itself (a bad name, a
// missing field), as opposed to a failure while carrying it out.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
