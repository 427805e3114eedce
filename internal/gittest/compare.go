package gittest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Node is what a comparison looks at for one path.
type Node struct {
	Kind   string // "file", "exec", "symlink", "dir"
	SHA256 string // content of files, target of symlinks
}

// Tree maps slash-separated paths (no leading slash) to nodes.
type Tree map[string]Node

// Archive returns the tree of rev in repoDir as `git archive` writes it.
// Gitlinks appear as empty directories, as git archive writes them.
func Archive(t TB, repoDir, rev string) Tree {
	t.Helper()
	cmd := exec.Command("git", "archive", "--format=tar", rev)
	cmd.Dir = repoDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v", rev, err)
	}
	tree := Tree{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("git archive %s: %v", rev, err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch h.Typeflag {
		case tar.TypeDir:
			tree[name] = Node{Kind: "dir"}
		case tar.TypeSymlink:
			tree[name] = Node{Kind: "symlink", SHA256: sum([]byte(h.Linkname))}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("git archive %s: %v", rev, err)
			}
			kind := "file"
			if h.Mode&0o100 != 0 {
				kind = "exec"
			}
			tree[name] = Node{Kind: kind, SHA256: sum(data)}
		}
	}
	return tree
}

// ReadDir returns the tree under dir as it is on disk (or in a mount),
// skipping the top-level names in skip (such as ".git").
func ReadDir(t TB, dir string, skip ...string) Tree {
	t.Helper()
	tree, err := ReadDirErr(dir, skip...)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return tree
}

// ReadDirErr is ReadDir returning its error.
func ReadDirErr(dir string, skip ...string) (Tree, error) {
	tree := Tree{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		for _, s := range skip {
			if rel == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			tree[rel] = Node{Kind: "symlink", SHA256: sum([]byte(target))}
		case d.IsDir():
			tree[rel] = Node{Kind: "dir"}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			kind := "file"
			if info.Mode()&0o100 != 0 {
				kind = "exec"
			}
			tree[rel] = Node{Kind: kind, SHA256: sum(data)}
		default:
			return fmt.Errorf("%s: unexpected file type %v", rel, d.Type())
		}
		return nil
	})
	return tree, err
}

// Diff lists the differences between want and got, at most max of them.
func Diff(want, got Tree, max int) []string {
	var out []string
	var paths []string
	for p := range want {
		paths = append(paths, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		w, inW := want[p]
		g, inG := got[p]
		switch {
		case !inG:
			out = append(out, "missing "+p)
		case !inW:
			out = append(out, "extra "+p)
		case w != g:
			out = append(out, fmt.Sprintf("differs %s: want %s, got %s", p, w.Kind, g.Kind))
		}
		if len(out) >= max {
			break
		}
	}
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}
