package mirror_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
)

// mergeFixture is a remote with main and a feature branch forked from it.
func mergeFixture(t *testing.T, mainFiles, featureFiles []gittest.File) (*gittest.Repo, *mirror.Mirror) {
	t.Helper()
	base := []gittest.File{
		{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
		{Path: "dir/b.txt", Content: []byte(strings.Repeat("a fairly long line of text that makes rename detection work\n", 20))},
		{Path: "c.txt", Content: []byte("c\n")},
	}
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "base", base)
	gittest.Git(t, repo.Dir, "branch", "feature", "main")
	repo.Commit(t, "main", "main change", mainFiles)
	repo.Commit(t, "feature", "feature change", featureFiles)
	ms, err := mirror.Open(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ms.Add(context.Background(), "demo", repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return repo, m
}

func TestMergeMatchesGitMerge(t *testing.T) {
	long := strings.Repeat("a fairly long line of text that makes rename detection work\n", 20)
	tests := []struct {
		name          string
		main, feature []gittest.File
		conflicts     []string
	}{
		{
			name: "disjoint edits",
			main: []gittest.File{
				{Path: "a.txt", Content: []byte("line1 main\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
				{Path: "dir/b.txt", Content: []byte(long)}, {Path: "c.txt", Content: []byte("c\n")},
			},
			feature: []gittest.File{
				{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8 feature\n")},
				{Path: "dir/b.txt", Content: []byte(long)}, {Path: "c.txt", Content: []byte("c\n")},
				{Path: "new.txt", Content: []byte("new\n")},
			},
		},
		{
			name: "rename on one side, edit on the other",
			main: []gittest.File{
				{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
				{Path: "moved/b-renamed.txt", Content: []byte(long)}, {Path: "c.txt", Content: []byte("c\n")},
			},
			feature: []gittest.File{
				{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
				{Path: "dir/b.txt", Content: []byte(long + "one more line from feature\n")}, {Path: "c.txt", Content: []byte("c\n")},
			},
		},
		{
			name: "conflicting edits",
			main: []gittest.File{
				{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
				{Path: "dir/b.txt", Content: []byte(long)}, {Path: "c.txt", Content: []byte("c from main\n")},
			},
			feature: []gittest.File{
				{Path: "a.txt", Content: []byte("line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n")},
				{Path: "dir/b.txt", Content: []byte(long)}, {Path: "c.txt", Content: []byte("c from feature\n")},
			},
			conflicts: []string{"c.txt"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo, m := mergeFixture(t, tc.main, tc.feature)
			ctx := context.Background()
			base, err := m.Resolve(ctx, "main")
			if err != nil {
				t.Fatal(err)
			}
			head, err := m.Resolve(ctx, "feature")
			if err != nil {
				t.Fatal(err)
			}
			refsBefore := gittest.Git(t, m.Dir, "for-each-ref")
			commit, err := m.Merge(ctx, base, head)
			if refsAfter := gittest.Git(t, m.Dir, "for-each-ref"); refsAfter != refsBefore {
				t.Errorf("merge changed refs:\n%s\n->\n%s", refsBefore, refsAfter)
			}
			if tc.conflicts != nil {
				var ce *mirror.ConflictError
				if !errors.As(err, &ce) {
					t.Fatalf("want a conflict, got commit %s, err %v", commit, err)
				}
				sort.Strings(ce.Paths)
				if !reflect.DeepEqual(ce.Paths, tc.conflicts) {
					t.Fatalf("conflicts %v, want %v", ce.Paths, tc.conflicts)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			parents := gittest.Git(t, m.Dir, "show", "-s", "--format=%P", commit)
			if parents != base+" "+head {
				t.Errorf("parents %q, want %q", parents, base+" "+head)
			}
			// The reference: git merge in a scratch clone.
			scratch := filepath.Join(t.TempDir(), "scratch")
			gittest.Git(t, "", "clone", "-q", repo.Dir, scratch)
			gittest.Git(t, scratch, "checkout", "-q", "main")
			gittest.Git(t, scratch, "merge", "-q", "--no-edit", "origin/feature")
			want := gittest.Git(t, scratch, "rev-parse", "HEAD^{tree}")
			got := gittest.Git(t, m.Dir, "rev-parse", commit+"^{tree}")
			if got != want {
				t.Fatalf("merge tree %s, git merge gives %s", got, want)
			}
			again, err := m.Merge(ctx, base, head)
			if err != nil || again != commit {
				t.Fatalf("second merge gave %s, %v; want the same commit %s", again, err, commit)
			}
		})
	}
}
