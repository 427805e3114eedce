//go:build linux

package fs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/workspace"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ctx := context.Background()
	e.create("good")
	before := e.fs.List()
	for _, name := range []string{"../x", "a/b", "@x", "", ".x", "x y", strings.Repeat("a", 300), "a\x00b"} {
		if _, err := e.fs.Create(ctx, name, workspace.Spec{Repo: "demo", Commit: e.commit}); err == nil {
			t.Errorf("create %q: no error", name)
		}
		if err := e.fs.Remove(name); err == nil {
			t.Errorf("remove %q: no error", name)
		}
		if workspace.ValidateName(name) == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
		}
	}
	for _, spec := range []workspace.Spec{
		{Repo: "demo", Commit: "main"},
		{Repo: "demo", Commit: strings.Repeat("1", 40)},
		{Repo: "nope", Commit: e.commit},
		{Commit: e.commit},
	} {
		if _, err := e.fs.Create(ctx, "x", spec); err == nil {
			t.Errorf("create with %+v: no error", spec)
		}
	}
	if _, err := e.fs.Create(ctx, "good", workspace.Spec{Repo: "demo", Commit: e.commit}); !errors.Is(err, workspace.ErrExists) {
		t.Errorf("create existing: %v", err)
	}
	if err := e.fs.Remove("missing"); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("remove missing: %v", err)
	}
	if _, err := e.fs.Status("missing"); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("status missing: %v", err)
	}
	after := e.fs.List()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("list changed: %v -> %v", before, after)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "workspaces"))
	if len(entries) != 1 || entries[0].Name() != "good" {
		t.Errorf("workspaces on disk: %v", entries)
	}
	for _, p := range []string{"x", "nope"} {
		if _, err := os.Stat(filepath.Join(e.mnt, p)); !os.IsNotExist(err) {
			t.Errorf("%s in mount: %v", p, err)
		}
	}
	// Remove really removes, from the mount too.
	if err := e.fs.Remove("good"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.mnt, "good")); !os.IsNotExist(err) {
		t.Errorf("removed workspace still in mount: %v", err)
	}
	// A name can be reused after removal.
	e.create("good")
	if got := readFile(t, filepath.Join(e.mnt, "good/README.md")); got != "hello gitfs\n" {
		t.Errorf("recreated workspace: %q", got)
	}
	keep, err := workspace.Commits(e.root)
	if err != nil || len(keep) != 1 || !keep[e.commit] {
		t.Errorf("WorkspaceCommits: %v %v", keep, err)
	}
}
