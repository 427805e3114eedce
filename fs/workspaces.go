//go:build linux

package fs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/gitfs/gitfs/workspace"
)

// The registry of workspaces: what the daemon calls. Each operation finds
// the workspace's view under FS.mu, then works under the view's own lock.

// Create makes workspace name showing spec.Commit, in time independent of
// the tree's size: it leases the snapshot and writes the workspace's meta.
// It returns the workspace's path in the mount.
func (f *FS) Create(ctx context.Context, name string, spec workspace.Spec) (string, error) {
	if err := workspace.ValidateName(name); err != nil {
		return "", err
	}
	if spec.Repo == "" {
		return "", fmt.Errorf("create workspace %s: no repository given", name)
	}
	if !workspace.IsCommitID(spec.Commit) {
		return "", fmt.Errorf("create workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	if err := f.knownRepo(spec.Repo); err != nil {
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	f.mu.Lock()
	if f.ws[name] != nil || f.creating[name] {
		f.mu.Unlock()
		return "", fmt.Errorf("create workspace %s: %w", name, workspace.ErrExists)
	}
	f.creating[name] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.creating, name)
		f.mu.Unlock()
	}()
	snap, release, err := f.opts.Snapshots.Get(ctx, spec.Repo, spec.Commit)
	if err != nil {
		return "", fmt.Errorf("create workspace %s: %w", name, err)
	}
	w, err := workspace.Create(f.wsOpts, name, spec, snap, release)
	if err != nil {
		release()
		return "", err
	}
	v := f.workspaceView(w)
	f.makeGitDir(v)
	f.mu.Lock()
	f.ws[name] = v
	f.attach(ctx, v)
	root, mnt, mounted := f.root, f.mountpoint, f.server != nil
	f.mu.Unlock()
	if root != nil && mounted {
		root.NotifyEntry(name) // drop a cached negative entry
	}
	f.log.Info("workspace created", "workspace", name, "repo", spec.Repo, "commit", spec.Commit)
	return filepath.Join(mnt, name), nil
}

// knownRepo checks that repo names a mirror.
func (f *FS) knownRepo(repo string) error {
	if f.opts.Resolver == nil {
		return nil
	}
	repos, err := f.opts.Resolver.Repos()
	if err != nil {
		return err
	}
	for _, r := range repos {
		if r == repo {
			return nil
		}
	}
	return fmt.Errorf("unknown repository %q: add it with `gitfs repo add`", repo)
}

func (f *FS) get(name string) (*view, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.ws[name]
	if v == nil {
		return nil, fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	return v, nil
}

// Remove deletes workspace name and its changes. Open files keep working
// until closed; new lookups fail.
func (f *FS) Remove(name string) error {
	if err := workspace.ValidateName(name); err != nil {
		return err
	}
	v, err := f.get(name)
	if err != nil {
		return err
	}
	v.mu.Lock()
	if v.removed {
		v.mu.Unlock()
		return fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	// The git dir's maker (or updater) pins packs through a host path
	// below the workspace's directory: were the directory moved to the
	// trash first, it would make that path again, and the name would stay
	// taken on disk. It takes no view lock, so it is waited for under mu
	// (as close does).
	v.awaitGitDir(context.Background())
	if !f.opts.OpenHandles {
		// Files open through the kernel are reached by inode only (no
		// OPEN, no handle): give each upper one a descriptor before its
		// directory goes; lower ones read from the snapshot on (Read).
		v.holdUpperFiles(true)
	}
	trash, err := v.ws.Remove()
	if err == nil && !f.opts.OpenHandles {
		// Their unchanged files read from the snapshot until the kernel
		// forgets the workspace's root (its OnForget).
		r := v.ws.KeepSnapshot()
		v.keptSnap.Store(&r)
	}
	v.mu.Unlock()
	if err != nil {
		return err
	}
	v.close()
	f.mu.Lock()
	delete(f.ws, name)
	root, mounted := f.root, f.server != nil
	var ch *gofs.Inode
	if root != nil {
		ch = root.GetChild(name)
		root.RmChild(name)
	}
	f.mu.Unlock()
	if ch == nil || !mounted {
		if r := v.keptSnap.Swap(nil); r != nil {
			(*r)() // no kernel knows the workspace
		}
	}
	if root != nil && mounted {
		if ch != nil {
			root.NotifyDelete(name, ch)
			ch.ForgetPersistent()
		} else {
			root.NotifyEntry(name)
		}
	}
	go os.RemoveAll(trash)
	f.log.Info("workspace removed", "workspace", name)
	return nil
}

// Get describes workspace name, computing nothing (no status).
func (f *FS) Get(name string) (workspace.Meta, error) {
	v, err := f.get(name)
	if err != nil {
		return workspace.Meta{}, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return workspace.Meta{}, fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	return v.ws.Meta(), nil
}

// List describes every workspace, sorted by name, computing nothing (no
// status: that walks a workspace's upper layer).
func (f *FS) List() []workspace.Meta {
	f.mu.Lock()
	views := make([]*view, 0, len(f.ws))
	for _, v := range f.ws {
		views = append(views, v)
	}
	f.mu.Unlock()
	out := make([]workspace.Meta, 0, len(views))
	for _, v := range views {
		v.mu.RLock()
		if !v.removed {
			out = append(out, v.ws.Meta())
		}
		v.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status lists the workspace's changes against its commit, sorted by path.
func (f *FS) Status(name string) ([]workspace.Change, error) {
	v, err := f.get(name)
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	return v.ws.Status()
}

// PlanExport records workspace name's changes against its commit, for
// `ws export` to write them later without holding the workspace (see
// workspace.ExportPlan). Close the plan when done.
func (f *FS) PlanExport(name string) (*workspace.ExportPlan, error) {
	v, err := f.get(name)
	if err != nil {
		return nil, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.removed {
		return nil, fmt.Errorf("workspace %q: %w", name, workspace.ErrNotFound)
	}
	return v.ws.PlanExport()
}
