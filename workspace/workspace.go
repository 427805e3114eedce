//go:build linux

package workspace

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/snapshot"
)

// Spec says what a workspace shows. Commit is the resolved commit to show;
// Base the resolved base of a merge workspace (recorded only).
type Spec struct {
	Repo, Rev, MergeInto, Commit, Base string
	// UID and GID own the workspace's root and unchanged entries (the
	// daemon passes the requesting user's; zero is root).
	UID, GID uint32
	// Mode is the permission bits of the workspace's root directory at
	// creation (0: 0755); its owner may chmod it later.
	Mode uint32
}

// Change is one changed path, as `git status --short` shows it: 'A'dded,
// 'M'odified, 'D'eleted, or 'R'enamed From another path.
type Change struct {
	Op   byte   `json:"op"`
	Path string `json:"path"`
	From string `json:"from,omitempty"`
}

// ConflictError is returned by an update when local changes touch paths
// that also changed between the old and the new commit.
type ConflictError struct {
	Workspace string
	Paths     []string
}

func (e *ConflictError) Error() string {
	shown := e.Paths
	more := ""
	if len(shown) > 20 {
		shown, more = shown[:20], fmt.Sprintf(" (and %d more)", len(e.Paths)-20)
	}
	return fmt.Sprintf("workspace %s: local changes conflict with the update: %s%s; keep them elsewhere or update with --discard-changes",
		e.Workspace, strings.Join(shown, ", "), more)
}

// ConflictPaths lets callers report any conflict the same way.
func (e *ConflictError) ConflictPaths() []string { return e.Paths }

// Workspace is one workspace on disk: ROOT/workspaces/NAME holding
// meta.json, upper/ (the changes: see Layer) and work/ (temp names for
// atomic steps), plus the lease on the snapshot it shows.
//
// A Workspace does no locking: its caller (the file system) serializes
// the calls that change it and may make reading calls concurrently. Meta,
// Snapshot and Layer may be called at any time.
type Workspace struct {
	dir     string
	meta    Meta
	layer   *Layer
	snap    *snapshot.Snapshot
	release func()
	// attrsMoved is set by a Switch that changed a .gitattributes file:
	// the same blob may then check out at another size, so the index
	// written next recomputes every size (writeIndex).
	attrsMoved bool
	// index is the index last written by ws update, if kept (writeIndex).
	index *indexMemo
	// saving is the write of meta.json the last Switch started, if any:
	// the next Switch, the git dir's update and Remove wait for it.
	saving *metaSave
}

// Options are what every workspace of a root shares.
type Options struct {
	// Root is the gitfs root: workspaces live in Root/workspaces/NAME.
	Root string
	// Chown gives new entries to their creators and copied-up ones to the
	// workspace's owner: only a root daemon can.
	Chown bool
	// XattrPrefix names the upper layer's own extended attributes:
	// "trusted.gitfs." for a root daemon (users cannot forge them and
	// they work on every file type), "user.gitfs." otherwise.
	XattrPrefix string
}

// Create makes workspace name showing snap (which must be spec.Commit's),
// in time independent of the tree's size: only its directory and meta
// are written, under a temp name published by one rename. On success the
// Workspace owns release; on failure the caller keeps it.
func Create(opts Options, name string, spec Spec, snap *snapshot.Snapshot, release func()) (*Workspace, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if spec.Repo == "" {
		return nil, fmt.Errorf("create workspace %s: no repository given", name)
	}
	if !IsCommitID(spec.Commit) || snap.Commit() != spec.Commit {
		return nil, fmt.Errorf("create workspace %s: %q is not a resolved commit id", name, spec.Commit)
	}
	wsDir := filepath.Join(opts.Root, "workspaces")
	dir := filepath.Join(wsDir, name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("create workspace %s: %w (on disk but not loaded: see the daemon log, or remove %s)", name, ErrExists, dir)
	}
	m := Meta{Name: name, ID: randomID(), Repo: spec.Repo, Rev: spec.Rev, MergeInto: spec.MergeInto,
		Commit: spec.Commit, Base: spec.Base, Created: time.Now().UTC(), UID: spec.UID, GID: spec.GID}
	mode := spec.Mode & 0o777
	if mode == 0 {
		mode = 0o755
	}
	// MkdirTemp makes it 0700: users reach a workspace's files only through
	// the mount, never on disk, where they could lay links for the daemon.
	tmp, err := os.MkdirTemp(wsDir, "."+name+".tmp-")
	if err == nil {
		err = os.Mkdir(filepath.Join(tmp, "upper"), 0o700)
	}
	if err == nil {
		// The workspace's root directory belongs to its user, as a checkout's would.
		err = os.Chmod(filepath.Join(tmp, "upper"), os.FileMode(mode))
		if err == nil && opts.Chown {
			err = os.Chown(filepath.Join(tmp, "upper"), int(spec.UID), int(spec.GID))
		}
		if err == nil {
			ct := snap.CommitTime()
			err = os.Chtimes(filepath.Join(tmp, "upper"), ct, ct)
		}
	}
	if err == nil {
		err = os.Mkdir(filepath.Join(tmp, "work"), 0o700)
	}
	if err == nil {
		err = writeMeta(tmp, m, nil)
	}
	if err == nil {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE)
	}
	if err == nil {
		err = syncDir(wsDir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create workspace %s: %w", name, ErrExists)
		}
		return nil, fmt.Errorf("create workspace %s: %w", name, err)
	}
	w, err := open(opts, dir, m, snap, release)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create workspace %s: %w", name, err)
	}
	return w, nil
}

// Load opens the workspace in dir (after a restart, with its changes),
// leasing its snapshot from store.
func Load(ctx context.Context, opts Options, dir string, store *snapshot.Store) (*Workspace, error) {
	// Made before workspace directories were private: no user may reach
	// the upper layer on disk (only through the mount).
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	m, err := readMeta(dir)
	if err != nil {
		return nil, err
	}
	// A record a crash cut short (writeMeta's temp file) is left over.
	if stale, err := filepath.Glob(filepath.Join(dir, metaTempPrefix+"*")); err == nil {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	snap, release, err := store.Get(ctx, m.Repo, m.Commit)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s of %s: %w", m.Commit, m.Repo, err)
	}
	w, err := open(opts, dir, m, snap, release)
	if err != nil {
		release()
		return nil, err
	}
	return w, nil
}

func open(opts Options, dir string, m Meta, snap *snapshot.Snapshot, release func()) (*Workspace, error) {
	for _, sub := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("workspace %s: %w", m.Name, err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "work"), 0o700); err != nil {
		return nil, fmt.Errorf("workspace %s: %w", m.Name, err)
	}
	l, err := openLayer(opts, dir, m.UID, m.GID)
	if err != nil {
		return nil, fmt.Errorf("workspace %s: %w", m.Name, err)
	}
	return &Workspace{dir: dir, meta: m, layer: l, snap: snap, release: release}, nil
}

// Meta returns the workspace's record.
func (w *Workspace) Meta() Meta { return w.meta }

// Snapshot is the snapshot the workspace shows.
func (w *Workspace) Snapshot() *snapshot.Snapshot { return w.snap }

// Layer is the workspace's upper layer.
func (w *Workspace) Layer() *Layer { return w.layer }

// KeepSnapshot hands the workspace's snapshot lease to the caller, who
// calls what it returns once the snapshot may go (a removed workspace's
// files that processes still hold open read from it); Close then leaves
// the lease alone.
func (w *Workspace) KeepSnapshot() (release func()) {
	r := w.release
	w.release = nil
	if r == nil {
		r = func() {}
	}
	return r
}

// Close releases the workspace's descriptors and its snapshot lease. The
// workspace stays on disk.
func (w *Workspace) Close() {
	w.saving.wait() // its error went to Switched.Saved
	w.layer.close()
	if w.release != nil {
		w.release()
		w.release = nil
	}
}

// Remove moves the workspace out of ROOT/workspaces in one rename (so it
// is gone for every process at once, also after a crash) and returns the
// directory to delete, which may take long: the caller deletes it, e.g.
// in the background. Close it too.
func (w *Workspace) Remove() (trash string, err error) {
	w.saving.wait() // its rename would fail or land in the trash
	wsDir := filepath.Dir(w.dir)
	trash, err = os.MkdirTemp(wsDir, "."+w.meta.Name+".trash-")
	if err != nil {
		return "", fmt.Errorf("remove workspace %s: %w", w.meta.Name, err)
	}
	if err := os.Rename(w.dir, filepath.Join(trash, w.meta.Name)); err != nil {
		os.Remove(trash)
		return "", fmt.Errorf("remove workspace %s: %w", w.meta.Name, err)
	}
	syncDir(wsDir)
	return trash, nil
}

// CleanStale removes what interrupted creates and removes left under
// ROOT/workspaces (names starting with '.').
func CleanStale(root string) {
	entries, err := os.ReadDir(filepath.Join(root, "workspaces"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			os.RemoveAll(filepath.Join(root, "workspaces", e.Name()))
		}
	}
}

// metaTempPrefix names writeMeta's temp files, which Load removes.
const metaTempPrefix = ".meta-"

// writeMeta replaces dir/meta.json atomically and durably; written, if
// set, is called once the bytes are written, before they are synced.
func writeMeta(dir string, m Meta, written func()) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, metaTempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil && written != nil {
		written()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, "meta.json"))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}
