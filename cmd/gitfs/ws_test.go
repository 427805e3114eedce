package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestWsExportWorkers(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	tests := []struct {
		workers string
		ok      bool // accepted: the command goes on to the daemon
	}{
		{"0", false},
		{"-1", false},
		{"65", false},
		{"100", false},
		{"1", true},
		{"64", true},
	}
	for _, tc := range tests {
		t.Run(tc.workers, func(t *testing.T) {
			r := gitfs(t, "--root", root, "ws", "export", "job", out, "--workers", tc.workers)
			if !tc.ok {
				requireUsageError(t, r, "gitfs ws export: --workers must be between 1 and 64", helpOf("ws export"))
				return
			}
			if r.code != 1 || !strings.Contains(r.stderr, "serve --mountpoint") {
				t.Errorf("exit %d, stderr %q; want 1 and not running", r.code, r.stderr)
			}
		})
	}
	requireAbsent(t, out)
}

// TestWsExportDefaultWorkers: the default --workers is one export accepts,
// however many CPUs the host has.
func TestWsExportDefaultWorkers(t *testing.T) {
	var g globalFlags
	fs := newCommandFlags(findCommand([]string{"ws", "export"}), &g)
	n, err := strconv.Atoi(fs.Lookup("workers").DefValue)
	if err != nil || n < 1 || n > 64 {
		t.Fatalf("default --workers %q (%v): export accepts 1 to 64", fs.Lookup("workers").DefValue, err)
	}
}

func TestWsCreateNeedsRepoAndRev(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	for _, args := range [][]string{
		{},
		{"--repo", "demo"},
		{"--rev", "main"},
		{"--repo", "", "--rev", "main"},
		{"--merge-into", "main", "--rev", "feature"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := gitfs(t, append([]string{"--root", root, "ws", "create", "job"}, args...)...)
			requireUsageError(t, r, "gitfs ws create: --repo and --rev are required", helpOf("ws create"))
		})
	}
	requireAbsent(t, root)
}

// TestWsNotRunning: every ws command against a root no daemon serves fails
// with one line that says to start `gitfs serve`, and changes nothing.
func TestWsNotRunning(t *testing.T) {
	root := t.TempDir()
	out := filepath.Join(t.TempDir(), "out")
	tests := [][]string{
		{"ws", "create", "job", "--repo", "demo", "--rev", "main"},
		{"ws", "create", "job", "--repo", "demo", "--rev", "feature", "--merge-into", "main"},
		{"ws", "list"},
		{"ws", "rm", "job"},
		{"ws", "status", "job"},
		{"ws", "update", "job"},
		{"ws", "update", "job", "--rev", "v2", "--fetch", "--discard-changes"},
		{"ws", "export", "job", out},
		{"ws", "export", "job", out, "--workers", "4"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := gitfs(t, append([]string{"--root", root}, args...)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			prefix := "gitfs " + findCommand(args).name + ": "
			// The hint is a command that works as given: this root, and
			// serve's required --mountpoint.
			hint := "gitfs --root " + root + " serve --mountpoint DIR"
			if !strings.HasPrefix(r.stderr, prefix) || !strings.Contains(r.stderr, hint) {
				t.Errorf("stderr %q: want %q and the hint %q", r.stderr, prefix, hint)
			}
			requireOneLine(t, "stderr", r.stderr)
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
	if entries, err := os.ReadDir(root); err != nil || len(entries) > 0 {
		t.Errorf("the root holds %v (%v), want nothing", entries, err)
	}
	requireAbsent(t, out)
}
