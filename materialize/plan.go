package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitfs/gitfs/snapshot"
)

// source is what the materializer reads: *snapshot.Snapshot in
// production, small fakes in tests (hostile trees need no repository).
type source interface {
	Root() snapshot.ID
	Tree(id snapshot.ID) ([]snapshot.Entry, error)
	Stream(id snapshot.ID) (io.ReadCloser, int64, error)
	ReadLink(id snapshot.ID) (string, error)
	Commit() string
	CommitTime() time.Time
	ObjectsDir() string
	BuiltFrom(repo string) bool
}

var _ source = (*snapshot.Snapshot)(nil)

// batchSource is a source that inflates through git cat-file
// (snapshot.Batch), about twice as fast as Stream's Go inflation.
type batchSource interface {
	OpenBatch(ctx context.Context) (*snapshot.Batch, error)
}

var _ batchSource = (*snapshot.Snapshot)(nil)

// dirItem is one directory to create. Directories are listed parents
// first, so creating them in order never needs a missing parent.
type dirItem struct {
	parent  int32  // index in plan.dirs; -1 for the root
	name    string // "" for the root
	path    string // slash-separated, relative to the target ("" for the root)
	gitlink bool
	id      snapshot.ID // commit of a gitlink
}

// fileItem is one regular file or symlink to write.
type fileItem struct {
	dir  int32 // index in plan.dirs
	name string
	id   snapshot.ID
	kind snapshot.Kind
	// collided: on a case-insensitive target another entry of the same
	// directory folds to the same name; written sequentially, last wins.
	collided bool
}

// plan is the validated tree, in git's order: written files form
// contiguous runs per directory, which keeps parallel writers in
// different directories (and off each other's directory locks).
type plan struct {
	dirs     []dirItem
	files    []fileItem // regular and executable files
	links    []fileItem // symlinks
	entries  int
	collided []string
}

func (p *plan) filePath(f *fileItem) string {
	return joinPath(p.dirs[f.dir].path, f.name)
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// makePlan walks the whole tree in memory and validates every name before
// anything is written, so a hostile tree is refused having cost a walk,
// not a partial checkout. dirLen is the length of the final target path,
// to refuse paths that would exceed PATH_MAX there. With foldCase, names
// are also compared as a case-insensitive file system compares them.
func makePlan(ctx context.Context, src source, dirLen int, foldCase bool, lim limits) (*plan, error) {
	p := &plan{dirs: []dirItem{{parent: -1}}}
	var walk func(id snapshot.ID, dir int32, depth int) error
	walk = func(id snapshot.ID, dir int32, depth int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := src.Tree(id)
		if re := (*RefusedError)(nil); errors.As(err, &re) {
			// The snapshot refused this tree as it read it: report it at
			// its path here, as the plan's own refusals are.
			re = re.Under(p.dirs[dir].path)
			return refuse(re.Path, re.Rule)
		}
		if err != nil {
			return fmt.Errorf("read tree of %q: %w", displayPath(p.dirs[dir].path), err)
		}
		parent := p.dirs[dir].path
		if len(entries) > 0 && depth > lim.maxDepth {
			return refuse(joinPath(parent, entries[0].Name), fmt.Sprintf(ruleDepth, lim.maxDepth))
		}
		p.entries += len(entries)
		if p.entries > lim.maxEntries {
			return refuse(joinPath(parent, entries[0].Name), fmt.Sprintf(ruleEntries, lim.maxEntries))
		}
		seen := make(map[string]int, len(entries))
		var folded map[string]int
		if foldCase {
			folded = make(map[string]int, len(entries))
		}
		// First pass: names, duplicates and collisions, before descending,
		// so the first error names the shallowest offender.
		collide := make([]bool, len(entries))
		for i, e := range entries {
			path := joinPath(parent, e.Name)
			if rule := snapshot.CheckName(e.Name, e.Kind); rule != "" {
				return refuse(path, rule)
			}
			if _, dup := seen[e.Name]; dup {
				return refuse(path, ruleDuplicate)
			}
			seen[e.Name] = i
			if dirLen+1+len(path) >= pathMax {
				return refuse(path, rulePathMax)
			}
			if foldCase {
				key := foldKey(e.Name)
				if j, ok := folded[key]; ok {
					other := entries[j]
					// Two files folding together: git writes both and the
					// last wins; do the same, sequentially. Anything
					// involving a directory or a symlink could redirect
					// later writes, so it is refused.
					if !isRegular(e.Kind) || !isRegular(other.Kind) {
						return refuse(path, fmt.Sprintf(ruleCollision, joinPath(parent, other.Name)))
					}
					collide[i], collide[j] = true, true
				}
				folded[key] = i
			}
		}
		for i, e := range entries {
			switch e.Kind {
			case snapshot.Dir, snapshot.Gitlink:
				idx := int32(len(p.dirs))
				p.dirs = append(p.dirs, dirItem{
					parent:  dir,
					name:    e.Name,
					path:    joinPath(parent, e.Name),
					gitlink: e.Kind == snapshot.Gitlink,
					id:      e.ID,
				})
				if e.Kind == snapshot.Dir {
					if err := walk(e.ID, idx, depth+1); err != nil {
						return err
					}
				}
			case snapshot.Symlink:
				p.links = append(p.links, fileItem{dir: dir, name: e.Name, id: e.ID, kind: e.Kind})
			case snapshot.File, snapshot.Executable:
				f := fileItem{dir: dir, name: e.Name, id: e.ID, kind: e.Kind, collided: collide[i]}
				if f.collided {
					p.collided = append(p.collided, joinPath(parent, e.Name))
				}
				p.files = append(p.files, f)
			default:
				return refuse(joinPath(parent, e.Name), fmt.Sprintf("unsupported entry kind %s", e.Kind))
			}
		}
		return nil
	}
	if err := walk(src.Root(), 0, 1); err != nil {
		return nil, err
	}
	return p, nil
}

func isRegular(k snapshot.Kind) bool { return k == snapshot.File || k == snapshot.Executable }

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// pathComponents splits a plan path; "" is the root.
func pathComponents(p string) []string {
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}
