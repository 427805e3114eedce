package workspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gitfs/gitfs/internal/gitdir"
)

// A workspace's record on disk, readable without its upper layer, the
// snapshot or FUSE: what gc (which snapshots to keep), repo rm (which
// repositories are in use) and the control API's types need, on every
// system the CLI builds for. The rest of the package is Linux's.

// Meta is a workspace's record, kept in ROOT/workspaces/NAME/meta.json
// and shown by `ws list`.
type Meta struct {
	Name      string    `json:"name"`
	ID        uint64    `json:"id"` // inode numbers' namespace: random, fixed for life
	Repo      string    `json:"repo"`
	Rev       string    `json:"rev"`
	MergeInto string    `json:"merge_into,omitempty"`
	Commit    string    `json:"commit"`
	Base      string    `json:"base,omitempty"` // resolved base of a merge workspace
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated,omitzero"` // the last ws update; zero: never
	UID       uint32    `json:"uid"`              // owner: of the root and of unchanged entries
	GID       uint32    `json:"gid"`
}

// ErrNotFound reports an unknown workspace; ErrExists one that exists.
var (
	ErrNotFound = errors.New("no such workspace")
	ErrExists   = errors.New("workspace already exists")
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// ValidateName checks a workspace name: [A-Za-z0-9._-]+, not starting with
// '.', '-' or '@', so that it is one safe path element and never taken for
// an option by a tool it is passed to.
func ValidateName(name string) error {
	if !validName.MatchString(name) || len(name) > 200 {
		return fmt.Errorf("invalid workspace name %q: use letters, digits, '.', '_' and '-', not starting with '.', '-' or '@'", name)
	}
	return nil
}

// IsCommitID reports whether s is a full, lower-case 40-hex object id.
func IsCommitID(s string) bool { return gitdir.IsID(s) }

// Dir is ROOT/workspaces/NAME.
func Dir(root, name string) string { return filepath.Join(root, "workspaces", name) }

// Names lists the workspaces on disk under root.
func Names(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "workspaces"))
	if err != nil {
		return nil, fmt.Errorf("workspaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Commits returns the commits of all workspaces on disk under root, so
// that gc keeps their snapshots even while no daemon runs.
func Commits(root string) (map[string]bool, error) {
	keep := map[string]bool{}
	if err := eachMeta(root, func(_ string, m Meta) { keep[m.Commit] = true }); err != nil {
		return nil, err
	}
	return keep, nil
}

// eachMeta calls fn with the name and record of every workspace on disk
// under root; one removed meanwhile is skipped.
func eachMeta(root string, fn func(name string, m Meta)) error {
	metas, err := filepath.Glob(filepath.Join(root, "workspaces", "*", "meta.json"))
	if err != nil {
		return err
	}
	for _, p := range metas {
		m, err := readMeta(filepath.Dir(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fn(filepath.Base(filepath.Dir(p)), m)
	}
	return nil
}

func readMeta(dir string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("meta.json: %w", err)
	}
	if !IsCommitID(m.Commit) || m.Repo == "" {
		return m, errors.New("meta.json: no repo or commit")
	}
	return m, nil
}

// ByRepo returns the names of the workspaces on disk under root, by
// repository: `repo rm` refuses to remove a repository workspaces use.
func ByRepo(root string) (map[string][]string, error) {
	out := map[string][]string{}
	if err := eachMeta(root, func(name string, m Meta) { out[m.Repo] = append(out[m.Repo], name) }); err != nil {
		return nil, err
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out, nil
}
