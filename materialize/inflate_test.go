package materialize

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// TestCheckoutInflates: a checkout of a commit the blob store lacks writes
// the tree git archives, whichever inflates the blobs: git cat-file, Go
// (no git on PATH), or Go after a git that fails before answering (the
// snapshot's directory refused, say).
func TestCheckoutInflates(t *testing.T) {
	repo := gittest.NewRepo(t)
	commit := repo.Commit(t, "main", "first", gittest.Generate(300, 7))
	want := gittest.Archive(t, repo.Dir, commit)
	realGit, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	// A git that logs its runs, to see cat-file used, and one that fails.
	loggingGit, failingGit := t.TempDir(), t.TempDir()
	runs := filepath.Join(loggingGit, "runs")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %q\nexec %q \"$@\"\n", runs, realGit)
	if err := os.WriteFile(filepath.Join(loggingGit, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(failingGit, "git"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		path    string // PATH while checking out
		catFile bool   // git cat-file must have run
	}{
		{"git cat-file", loggingGit, true},
		{"go", t.TempDir(), false},
		{"go after git failed", failingGit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			ms, err := mirror.Open(root, log)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ms.Add(context.Background(), "demo", repo.Dir); err != nil {
				t.Fatal(err)
			}
			st, err := snapshot.NewStore(root, ms, log, snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			snap, release, err := st.Get(context.Background(), "demo", commit)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			t.Setenv("PATH", tc.path)
			os.Remove(runs)
			out := filepath.Join(t.TempDir(), "out")
			stats, err := Checkout(context.Background(), snap, out, Options{Workers: 3, NoInflate: true})
			if err != nil {
				t.Fatal(err)
			}
			if stats.Files == 0 {
				t.Fatal("no files written")
			}
			if d := gittest.Diff(want, gittest.ReadDir(t, out), 5); len(d) > 0 {
				t.Errorf("checkout differs from git archive:\n%v", d)
			}
			if log, _ := os.ReadFile(runs); tc.catFile && !strings.Contains(string(log), "cat-file --batch") {
				t.Errorf("git cat-file did not run; git ran with: %q", log)
			}
		})
	}
}

// TestContentZeroHoldsNothing: the content of a file whose batch failed
// before its source was settled is the zero value, and releasing it must
// close no descriptor (it closed descriptor 0 once).
func TestContentZeroHoldsNothing(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Descriptor 0 is whatever the test runner left there, maybe nothing:
	// put a pipe end there, to see it survive.
	saved, err := unix.Dup(0)
	if err == nil {
		defer func() { unix.Dup2(saved, 0); unix.Close(saved) }()
	}
	if err := unix.Dup2(int(r.Fd()), 0); err != nil {
		t.Fatal(err)
	}
	var c content
	c.release()
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != nil {
		t.Fatalf("releasing an empty content closed descriptor 0: %v", err)
	}
}
