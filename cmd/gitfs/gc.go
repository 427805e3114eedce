package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// workspaceCommits returns the commits that workspaces under root are based
// on: their snapshots stay leased even while no daemon runs.
func workspaceCommits(root string) (map[string]bool, error) {
	keep := make(map[string]bool)
	metas, err := filepath.Glob(filepath.Join(root, "workspaces", "*", "meta.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range metas {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var m struct {
			Commit string `json:"commit"`
		}
		if err := json.Unmarshal(b, &m); err == nil && m.Commit != "" {
			keep[m.Commit] = true
		}
	}
	return keep, nil
}
