package workspace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ByRepo returns the names of the workspaces on disk under root, by
// repository: `repo rm` refuses to remove a repository workspaces use.
func ByRepo(root string) (map[string][]string, error) {
	out := map[string][]string{}
	metas, err := filepath.Glob(filepath.Join(root, "workspaces", "*", "meta.json"))
	if err != nil {
		return nil, err
	}
	for _, p := range metas {
		m, err := readMeta(filepath.Dir(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out[m.Repo] = append(out[m.Repo], filepath.Base(filepath.Dir(p)))
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}
