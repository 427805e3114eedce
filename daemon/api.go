// Package daemon is gitfs's long-running side: it wires mirrors, snapshots,
// the FUSE file system and the materializer together, serves the control
// API over ROOT/gitfs.sock (HTTP+JSON on a unix socket, scriptable with
// curl), fetches mirrors in the background, and offers a Client for the CLI.
//
// # Locking
//
// Locks, in the order they may be taken:
//
//	limitListener.mu  guards the count of each user's open control
//	                  connections (connlimit_linux.go); a leaf.
//
// Across processes: ROOT/locks/daemon.lock, one daemon per root (daemon.go,
// takeover_linux.go).
package daemon

import "github.com/gitfs/gitfs/workspace"

// SocketName is the control socket's file name under the root.
const SocketName = "gitfs.sock"

// CreateRequest asks for a new workspace.
type CreateRequest struct {
	Name      string `json:"name"`
	Repo      string `json:"repo"`
	Rev       string `json:"rev"`
	MergeInto string `json:"merge_into,omitempty"`
	// Fetch fetches the mirror first, for a commit pushed a moment ago.
	Fetch bool `json:"fetch,omitempty"`
}

// CreateResponse says where the workspace is mounted.
type CreateResponse struct {
	Path   string `json:"path"`
	Commit string `json:"commit"`
}

// UpdateRequest moves a workspace to another commit.
type UpdateRequest struct {
	Rev            string `json:"rev,omitempty"` // empty: re-resolve the workspace's own rev
	Fetch          bool   `json:"fetch,omitempty"`
	DiscardChanges bool   `json:"discard_changes,omitempty"`
	// Reset drops every local change: the workspace shows the new commit
	// as a new one would, keeping the kernel's cache of unchanged files.
	Reset bool `json:"reset,omitempty"`
}

// UpdateResponse reports the commit a workspace moved from and to.
type UpdateResponse struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ExportRequest writes a workspace (snapshot plus changes) to a new
// directory, with the caller's credentials: the caller's permissions are
// checked and the caller owns what is written.
type ExportRequest struct {
	// DirFD is a directory descriptor open in the calling process (the
	// CLI opens the target's parent itself); the export becomes Name in
	// it. The daemon takes the descriptor from the caller (pidfd_getfd),
	// so no path is resolved on the caller's behalf.
	DirFD *int   `json:"dir_fd,omitempty"`
	Name  string `json:"name,omitempty"`
	// Dir is an absolute path, for callers that cannot pass a descriptor
	// (curl); its parent is opened with the caller's credentials.
	Dir     string `json:"dir,omitempty"`
	Workers int    `json:"workers,omitempty"` // 1 to 64; 0: one per CPU
}

// ExportResponse counts what was written.
type ExportResponse struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Workspace is one row of `ws list`: the workspace's record, where it is
// mounted and how many paths it changes.
type Workspace struct {
	workspace.Meta
	Path         string `json:"path"`
	ChangedFiles int    `json:"changed_files"`
}

// Change is one line of `ws status`.
type Change struct {
	Op   string `json:"op"` // A, M, D or R
	Path string `json:"path"`
	From string `json:"from,omitempty"` // renames
}

// errorBody is how every failed request answers.
type errorBody struct {
	Error string `json:"error"`
	// Conflicts lists paths when a merge or an update is refused for them.
	Conflicts []string `json:"conflicts,omitempty"`
	// Kind classifies the failure for the CLI's exit status: "usage",
	// "permission", "not_found", "exists", "conflict", "refused" or
	// "internal".
	Kind string `json:"kind"`
}
