//go:build linux

package daemon

import (
	"context"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/workspace"
)

// gitSource is what a workspace's git dir is made from: its repository's
// mirror, as it is when the workspace is created or updated.
type gitSource struct {
	m    *mirror.Mirror
	hook string
}

func (d *Daemon) gitSource(repo string) (workspace.GitSource, error) {
	m, err := d.cfg.Mirrors.Lookup(repo)
	if err != nil {
		return nil, err
	}
	return gitSource{m: m, hook: d.fsmonitorHook()}, nil
}

func (g gitSource) FSMonitor() string { return g.hook }

func (g gitSource) URL(ctx context.Context) (string, error) { return g.m.URL(ctx) }

func (g gitSource) Refs(ctx context.Context) ([]workspace.GitRef, string, error) {
	refs, head, err := g.m.RefList(ctx)
	if err != nil {
		return nil, "", err
	}
	out := make([]workspace.GitRef, len(refs))
	for i, r := range refs {
		out[i] = workspace.GitRef{Name: r.Name, ID: r.ID, Peeled: r.Peeled}
	}
	return out, head, nil
}

func (g gitSource) PinPacks(ctx context.Context, dir string) ([]string, error) {
	return g.m.PinPacks(ctx, dir)
}
