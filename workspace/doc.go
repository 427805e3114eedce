// Package workspace keeps one workspace on disk: what a workspace is,
// without the kernel. ROOT/workspaces/NAME holds meta.json (the Meta
// record), upper/ (the Layer: every path the workspace changed, with
// whiteouts and xattr records for deletions, moves and inode numbers) and
// work/ (temp names for atomic steps). A Workspace also holds the lease on
// the snapshot it shows.
//
// What it does: create, load and remove a workspace (each one rename on
// disk, so a crash leaves it whole or absent); the upper layer's atomic
// steps (CopyUp, Place, Whiteout, RemoveDir, Move), each prepared in
// work/ and renamed into place; Status (the changes against the commit,
// as git status --short shows them); PlanExport (what ws export writes on
// top of a checkout); and Switch (ws update: tree diff, conflicts with
// local changes, the new commit recorded durably).
//
// Every call names entries relative to directory descriptors and never
// follows a symlink: nothing in the upper layer can redirect the daemon.
//
// Concurrency: a Workspace does no locking. Its caller (package fs)
// serializes the calls that change it (the steps, Switch, Remove) and may
// make reading calls (Status, PlanExport, the record getters) concurrently
// with each other. Package-level functions are safe for concurrent use.
// One goroutine of its own: Switch writes meta.json in the background
// (metaSave, channels closed when its bytes are written and when it is
// durable, no lock); the next Switch, UpdateGitDir, Remove and Close wait
// for it to be durable, Switched.Saved only for the bytes (reporting a
// failure to write them), and UpdateGitDir reports a failure after.
package workspace
