//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gitfs/gitfs/workspace"
)

// Who may do what over the control socket. The socket itself is open to
// every local user; each request is then decided by its caller's
// credentials as the kernel recorded them at connect time:
//
//   - a repository (creating a workspace of it, fetching it) by its Access:
//     its owner, its group, everyone if public, and root;
//   - a workspace (status, update, export, remove) by its owner and root;
//     a listing shows a user their own workspaces, root all of them.
//
// A daemon not running as root serves only its own user (and root): it
// cannot write as anyone else, so it must not act for anyone else.

// errForbidden marks a request its caller may not make (HTTP 403).
var errForbidden = errors.New("permission denied")

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errForbidden, fmt.Sprintf(format, args...))
}

// caller returns the request's peer, refusing connections whose
// credentials are unknown and, on a non-root daemon, other users.
func (d *Daemon) caller(ctx context.Context) (*peer, error) {
	p, ok := peerOf(ctx)
	if !ok {
		return nil, forbidden("the caller's credentials are unknown (connect over the unix socket)")
	}
	if euid := uint32(os.Geteuid()); euid != 0 && p.uid != euid && p.uid != 0 {
		return nil, forbidden("this daemon runs as uid %d and serves only that user", euid)
	}
	return p, nil
}

// mayUseRepo checks that p may read repository repo.
func (d *Daemon) mayUseRepo(p *peer, repo string) error {
	a, err := d.cfg.Mirrors.Access(repo)
	if err != nil {
		return err
	}
	if !a.Allows(p.uid, p.gid, p.groups) {
		return forbidden("repository %s is not shared with uid %d (its owner or root can share it: gitfs repo access %s --group GROUP)", repo, p.uid, repo)
	}
	return nil
}

// mayUseWorkspace checks that p owns the workspace (or is root).
func mayUseWorkspace(p *peer, w workspace.Meta) error {
	if p.uid != 0 && p.uid != w.UID {
		return forbidden("workspace %s belongs to uid %d", w.Name, w.UID)
	}
	return nil
}
