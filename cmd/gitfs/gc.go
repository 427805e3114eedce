package main

import gfs "github.com/gitfs/gitfs/fs"

// workspaceCommits returns the commits that workspaces under root are based
// on: their snapshots stay leased even while no daemon runs.
func workspaceCommits(root string) (map[string]bool, error) {
	return gfs.WorkspaceCommits(root)
}
