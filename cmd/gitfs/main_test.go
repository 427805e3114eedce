package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/internal/gittest"
)

// These tests call run in-process, as main does. None needs a daemon, a
// network or FUSE. They do not run in parallel: the commands' flag
// variables are package state, reset by each parse.

// defaultRootDir is GITFS_ROOT for the whole test binary, so that a command
// run without --root never touches the real default root (~/.cache/gitfs).
var defaultRootDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gitfs-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defaultRootDir = filepath.Join(dir, "default-root")
	os.Setenv("GITFS_ROOT", defaultRootDir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliResult is what one run did.
type cliResult struct {
	code           int
	stdout, stderr string
}

func gitfs(t *testing.T, args ...string) cliResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// requireOneLine fails unless s is exactly one newline-terminated line.
func requireOneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("%s is not one line: %q", what, s)
	}
}

// requireAbsent fails if path exists: a command refused before it did
// anything must not have created its root.
func requireAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (%v): the refused command created it", path, err)
	}
}

// requireUsageError checks a usage error: exit 2, a first line of stderr
// that starts with want, then one line pointing to help, starting with
// help ("Run 'gitfs ws create --help'"), nothing on stdout: not the whole
// usage page, which would bury the error.
func requireUsageError(t *testing.T, r cliResult, want, help string) {
	t.Helper()
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	if got := firstLine(r.stderr); !strings.HasPrefix(got, want) {
		t.Errorf("stderr starts %q, want %q", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], help) {
		t.Errorf("stderr is not the error and %q:\n%s", help, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

// helpOf is the pointer a usage error of command name gives.
func helpOf(name string) string { return "Run '" + strings.TrimSpace("gitfs "+name) + " --help'" }

func TestUnknownCommand(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tests := []struct {
		args []string
		want string // the error line
		help string // the command whose help it points to
	}{
		{[]string{"nope"}, `gitfs: unknown command "nope"`, ""},
		{[]string{"chekout", "demo", "main", "out"}, `gitfs: unknown command "chekout"`, ""},
		{[]string{"ws"}, "gitfs ws: which one? create, export, list, rm, status, update", "ws"},
		{[]string{"ws", "nope", "x"}, `gitfs: unknown command "ws nope"`, "ws"},
		{[]string{"ws", "--root", root, "list"}, "gitfs ws: which one?", "ws"},
		{[]string{"repo"}, "gitfs repo: which one? access, add, fetch, list, rm", "repo"},
		{[]string{"repo", "remove", "demo"}, `gitfs: unknown command "repo remove"`, "repo"},
		{[]string{"--root", root, "nope", "--workers", "3"}, `gitfs: unknown command "nope"`, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := gitfs(t, tc.args...)
			requireUsageError(t, r, tc.want, helpOf(tc.help))
			requireAbsent(t, root)
		})
	}
}

func TestBadFlag(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tests := []struct {
		args  []string
		want  string // how the first line of stderr starts
		usage string // what follows it
	}{
		{[]string{"--nope", "repo", "list"}, "gitfs: unknown flag: --nope", helpOf("")},
		{[]string{"-x", "repo", "list"}, "gitfs: unknown shorthand flag: 'x' in -x", helpOf("")},
		{[]string{"--root"}, "gitfs: flag needs an argument: --root", helpOf("")},
		{[]string{"repo", "list", "--nope"}, "gitfs repo list: unknown flag: --nope", helpOf("repo list")},
		{[]string{"--root", root, "repo", "add", "-x", "demo", "url"}, "gitfs repo add: unknown shorthand flag: 'x' in -x", helpOf("repo add")},
		{[]string{"ws", "export", "a", "b", "--workers", "many"}, `gitfs ws export: invalid argument "many" for "--workers" flag`, helpOf("ws export")},
		{[]string{"checkout", "demo", "main", "out", "--workers"}, "gitfs checkout: flag needs an argument: --workers", helpOf("checkout")},
		{[]string{"serve", "--fetch-interval", "often"}, `gitfs serve: invalid argument "often" for "--fetch-interval" flag`, helpOf("serve")},
		{[]string{"serve", "--browse-file-times", "mtime"}, "gitfs serve: --browse-file-times: use content or commit", helpOf("serve")},
		{[]string{"ws", "create", "job", "--merge"}, "gitfs ws create: unknown flag: --merge", helpOf("ws create")},
		// A command's flags belong to that command only.
		{[]string{"repo", "fetch", "demo", "--public"}, "gitfs repo fetch: unknown flag: --public", helpOf("repo fetch")},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			requireUsageError(t, gitfs(t, tc.args...), tc.want, tc.usage)
			requireAbsent(t, root)
		})
	}
}

func TestWrongArgumentCount(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tests := []struct {
		args     []string
		expected string // the command's ARGS
		got      int
	}{
		{[]string{"repo", "add", "demo"}, "NAME URL", 1},
		{[]string{"repo", "add", "demo", "url", "more"}, "NAME URL", 3},
		{[]string{"repo", "fetch"}, "NAME", 0},
		{[]string{"repo", "list", "demo"}, "", 1},
		{[]string{"repo", "access"}, "NAME", 0},
		{[]string{"rev-parse", "demo"}, "REPO REV", 1},
		{[]string{"checkout", "demo", "main"}, "REPO REV DIR", 2},
		{[]string{"gc", "now"}, "", 1},
		{[]string{"serve", "/mnt"}, "", 1},
		{[]string{"quickstart", "."}, "", 1},
		{[]string{"ws", "create"}, "NAME", 0},
		{[]string{"ws", "create", "a", "b", "--repo", "demo", "--rev", "main"}, "NAME", 2},
		{[]string{"ws", "list", "job"}, "", 1},
		{[]string{"ws", "rm"}, "NAME", 0},
		{[]string{"ws", "status", "a", "b"}, "NAME", 2},
		{[]string{"ws", "update"}, "NAME", 0},
		{[]string{"ws", "export", "job"}, "NAME DIR", 1},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			c := findCommand(tc.args)
			r := gitfs(t, append([]string{"--root", root}, tc.args...)...)
			want := fmt.Sprintf("gitfs %s: expected arguments %s, got %d", c.name, tc.expected, tc.got)
			requireUsageError(t, r, want, helpOf(c.name))
			requireAbsent(t, root)
		})
	}
}

// TestUsageErrorsOfCommands: flag values a command refuses before doing
// anything are usage errors.
func TestUsageErrorsOfCommands(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "gitfs serve: --mountpoint is required"},
		{[]string{"checkout", "demo", "main", "out", "--workers", "0"}, "gitfs checkout: --workers must be at least 1"},
		{[]string{"checkout", "demo", "main", "out", "--workers=-3"}, "gitfs checkout: --workers must be at least 1"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := gitfs(t, append([]string{"--root", root}, tc.args...)...)
			requireUsageError(t, r, tc.want, helpOf(findCommand(tc.args).name))
			requireAbsent(t, root)
		})
	}
}

func TestNoCommandShowsUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"--root", t.TempDir()}, {"--log-level", "debug"}} {
		r := gitfs(t, args...)
		if r.code != 2 || !strings.HasPrefix(r.stdout, "gitfs: copy-on-write") || r.stderr != "" {
			t.Errorf("gitfs %q: exit %d, stdout %.40q, stderr %q; want 2 and the usage", args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	type helpCase struct {
		args  []string
		usage string // how stdout starts
	}
	top := "gitfs: copy-on-write git workspaces over FUSE"
	tests := []helpCase{
		{[]string{"--help"}, top},
		{[]string{"-h"}, top},
		{[]string{"help"}, top},
		{[]string{"--root", t.TempDir(), "help"}, top},
		{[]string{"--help", "repo", "list"}, top},
		// A group's help lists its commands.
		{[]string{"ws", "--help"}, "Usage: gitfs ws COMMAND"},
		{[]string{"ws", "-h"}, "Usage: gitfs ws COMMAND"},
		{[]string{"repo", "--help"}, "Usage: gitfs repo COMMAND"},
		{[]string{"help", "repo"}, "Usage: gitfs repo COMMAND"},
		{[]string{"repo", "help"}, "Usage: gitfs repo COMMAND"},
	}
	for _, c := range commands {
		words := strings.Fields(c.name)
		usage := "Usage: gitfs " + strings.TrimSpace(c.name+" "+c.args) + " [FLAGS]\n\n" + c.summary + "\n"
		tests = append(tests,
			helpCase{append([]string{"help"}, words...), usage},
			helpCase{append(words, "--help"), usage},
			helpCase{append(words, "-h"), usage},
			// --help wins over missing arguments and flags.
			helpCase{append(append([]string{"--root", t.TempDir()}, words...), "x", "y", "z", "--help"), usage},
		)
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := gitfs(t, tc.args...)
			if r.code != 0 {
				t.Errorf("exit %d, want 0", r.code)
			}
			if !strings.HasPrefix(r.stdout, tc.usage) {
				t.Errorf("stdout starts %.80q, want %q", r.stdout, tc.usage)
			}
			if r.stderr != "" {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
	// The top usage lists every command, and each command's usage its
	// global flags too.
	r := gitfs(t, "help")
	for _, c := range commands {
		if !strings.Contains(r.stdout, "\n  "+strings.TrimSpace(c.name+" "+c.args)+" ") {
			t.Errorf("top usage does not list %q", c.name)
		}
		cr := gitfs(t, append([]string{"help"}, strings.Fields(c.name)...)...)
		for _, flag := range []string{"--root string", "--log-level string"} {
			if !strings.Contains(cr.stdout, flag) {
				t.Errorf("usage of %s does not list %s", c.name, flag)
			}
		}
	}
	if defaultRootDir != "" {
		requireAbsent(t, defaultRootDir)
	}
}

func TestFindCommand(t *testing.T) {
	tests := []struct {
		words []string
		want  string // "": none
	}{
		{[]string{"checkout", "demo", "main", "out"}, "checkout"},
		{[]string{"repo", "add", "x", "y"}, "repo add"},
		{[]string{"ws", "export"}, "ws export"},
		{[]string{"ws"}, ""},
		{[]string{"ws", "--root"}, ""},
		{[]string{"repoadd"}, ""},
		{[]string{"REPO", "add"}, ""},
		{nil, ""},
	}
	for _, tc := range tests {
		got := ""
		if c := findCommand(tc.words); c != nil {
			got = c.name
		}
		if got != tc.want {
			t.Errorf("findCommand(%q) = %q, want %q", tc.words, got, tc.want)
		}
	}
}

// TestGlobalRootBeforeAndAfter: --root (and GITFS_ROOT) choose the root
// whether given before or after the command; the last one given wins. The
// "not running" error names the socket, so it shows which root was used.
func TestGlobalRootBeforeAndAfter(t *testing.T) {
	root := t.TempDir()
	other := t.TempDir()
	tests := []struct {
		name string
		env  string // GITFS_ROOT, if set
		args []string
	}{
		{"before", "", []string{"--root", root, "ws", "list"}},
		{"before with =", "", []string{"--root=" + root, "ws", "list"}},
		{"after", "", []string{"ws", "list", "--root", root}},
		{"after with =", "", []string{"ws", "list", "--root=" + root}},
		{"between the command's arguments", "", []string{"ws", "status", "--root", root, "job"}},
		{"before, with --log-level after", "", []string{"--root", root, "ws", "list", "--log-level", "debug"}},
		{"after, with --log-level before", "", []string{"--log-level", "error", "ws", "list", "--root", root}},
		{"after overrides before", "", []string{"--root", other, "ws", "list", "--root", root}},
		{"GITFS_ROOT", root, []string{"ws", "list"}},
		{"--root overrides GITFS_ROOT", other, []string{"ws", "list", "--root", root}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("GITFS_ROOT", tc.env)
			}
			r := gitfs(t, tc.args...)
			want := filepath.Join(root, "gitfs.sock")
			if r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("exit %d, stderr %q; want 1 and the socket %s", r.code, r.stderr, want)
			}
			requireOneLine(t, "stderr", r.stderr)
		})
	}
}

// TestGlobalLogLevelBeforeAndAfter: --log-level applies whether given
// before or after the command. A checkout of a local repository (no
// daemon, no network) logs "checkout done" at info, not at the default.
func TestGlobalLogLevelBeforeAndAfter(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "first", gittest.Generate(5, 1))
	root := t.TempDir()
	if r := gitfs(t, "--root", root, "repo", "add", "demo", repo.Dir); r.code != 0 {
		t.Fatalf("repo add: exit %d: %s", r.code, r.stderr)
	}
	outs := t.TempDir()
	tests := []struct {
		name string
		args []string // OUT: the checkout's directory
		logs bool
	}{
		{"default", []string{"--root", root, "checkout", "demo", "main", "OUT"}, false},
		{"info before", []string{"--log-level", "info", "--root", root, "checkout", "demo", "main", "OUT"}, true},
		{"info after", []string{"--root", root, "checkout", "demo", "main", "OUT", "--log-level", "info"}, true},
		{"debug after, with =", []string{"checkout", "--root", root, "demo", "main", "OUT", "--log-level=debug"}, true},
		{"error before", []string{"--log-level", "error", "--root", root, "checkout", "demo", "main", "OUT"}, false},
		{"info before, error after", []string{"--log-level", "info", "--root", root, "checkout", "demo", "main", "OUT", "--log-level", "error"}, false},
		{"error before, info after", []string{"--log-level", "error", "--root", root, "checkout", "demo", "main", "OUT", "--log-level", "info"}, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string(nil), tc.args...)
			for j := range args {
				if args[j] == "OUT" {
					args[j] = filepath.Join(outs, fmt.Sprint(i))
				}
			}
			r := gitfs(t, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if logged := strings.Contains(r.stderr, "checkout done"); logged != tc.logs {
				t.Errorf("logged the checkout: %v, want %v\n%s", logged, tc.logs, r.stderr)
			}
		})
	}
}

func TestBadLogLevel(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tests := []struct {
		level string
		args  []string
	}{
		{"loud", []string{"--log-level", "loud", "--root", root, "ws", "list"}},
		{"loud", []string{"--root", root, "ws", "list", "--log-level", "loud"}},
		{"", []string{"--root", root, "repo", "list", "--log-level="}},
		{"trace", []string{"--root", root, "--log-level=trace", "repo", "fetch", "demo"}},
		// A good level before the command does not hide a bad one after it.
		{"verbose", []string{"--log-level", "info", "--root", root, "gc", "--log-level", "verbose"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := gitfs(t, tc.args...)
			want := fmt.Sprintf("gitfs: --log-level %q: use debug, info, warn or error\n", tc.level)
			if r.code != 2 || r.stderr != want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", r.code, r.stdout, r.stderr, want)
			}
			requireAbsent(t, root)
		})
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"first\nsecond", "first; second"},
		{"  spaced   out\t", "spaced out"},
	}
	for _, tc := range tests {
		if got := oneLine(errors.New(tc.in)); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestExitStatus: an error wrapping an exitStatus chooses the exit code;
// the message is still one line.
func TestExitStatus(t *testing.T) {
	c := &command{
		name: "test-exit", maxArgs: 0, summary: "test only",
		run: func(_ context.Context, _ *env, _ *pflag.FlagSet, _ []string) error {
			return fmt.Errorf("wrapped: %w", exitStatus{errors.New("three\nlines\nhere"), 3})
		},
	}
	commands = append(commands, c)
	t.Cleanup(func() { commands = commands[:len(commands)-1] })
	r := gitfs(t, "--root", t.TempDir(), "test-exit")
	if r.code != 3 || r.stderr != "gitfs test-exit: wrapped: three; lines; here\n" {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
