package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestRepoInvalidName: a repository name that could leave ROOT/mirrors is
// refused, in one line, before the root is even created.
func TestRepoInvalidName(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	out := filepath.Join(t.TempDir(), "out")
	url := t.TempDir()
	var tests [][]string
	for _, name := range []string{"../x", "a/b", "..", ".", "", ".hidden", "demo.git", "a b", strings.Repeat("x", 101)} {
		tests = append(tests, []string{"repo", "add", name, url})
	}
	tests = append(tests,
		[]string{"repo", "add", "--", "-x", url}, // an option-like name after --
		[]string{"repo", "fetch", "../demo"},
		[]string{"rev-parse", "a/b", "main"},
		[]string{"checkout", "..", "main", out},
	)
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := gitfs(t, append([]string{"--root", root}, args...)...)
			prefix := "gitfs " + findCommand(args).name + ": invalid repository name "
			if r.code != 1 || !strings.HasPrefix(r.stderr, prefix) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", r.code, r.stdout, r.stderr, prefix)
			}
			requireOneLine(t, "stderr", r.stderr)
			requireAbsent(t, root)
			requireAbsent(t, out)
		})
	}
	r := gitfs(t, "--root", root, "repo", "access", "../x")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "gitfs repo access: invalid repository name ") {
		t.Errorf("repo access ../x: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRepoAddBadAccessFlags: an --owner or --group that names no one is a
// usage error found before anything is cloned.
func TestRepoAddBadAccessFlags(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "first", gittest.Generate(3, 1))
	for _, flag := range []string{"--owner", "--group"} {
		t.Run(flag, func(t *testing.T) {
			root := t.TempDir()
			r := gitfs(t, "--root", root, "repo", "add", "demo", repo.Dir, flag, "no-such-name-gitfs-test")
			requireUsageError(t, r, "gitfs repo add: "+flag+" no-such-name-gitfs-test: ", helpOf("repo add"))
			requireAbsent(t, filepath.Join(root, "mirrors", "demo.git"))
		})
	}
}

// TestRepoAccessFlags: the access flags of repo add and repo access, by
// number (no user database needed), as repo access then shows them.
func TestRepoAccessFlags(t *testing.T) {
	repo := gittest.NewRepo(t)
	repo.Commit(t, "main", "first", gittest.Generate(3, 1))
	root := t.TempDir()
	steps := []struct {
		args []string
		want string // repo access's line, less any names the user database adds
	}{
		{[]string{"repo", "add", "demo", repo.Dir, "--owner", "4242", "--group=4343"}, "owner 4242, group 4343, public false"},
		// Adding it again without flags keeps its access.
		{[]string{"repo", "add", "demo", repo.Dir}, "owner 4242, group 4343, public false"},
		{[]string{"repo", "access", "demo", "--public"}, "owner 4242, group 4343, public true"},
		{[]string{"repo", "access", "demo", "--no-group", "--public=false"}, "owner 4242, group none, public false"},
		{[]string{"repo", "add", "demo", repo.Dir, "--owner", "4244"}, "owner 4244, group none, public false"},
	}
	for _, s := range steps {
		if r := gitfs(t, append([]string{"--root", root}, s.args...)...); r.code != 0 {
			t.Fatalf("gitfs %q: exit %d: %s", s.args, r.code, r.stderr)
		}
		r := gitfs(t, "--root", root, "repo", "access", "demo")
		if r.code != 0 {
			t.Fatalf("repo access: exit %d: %s", r.code, r.stderr)
		}
		if got := stripNames(strings.TrimSpace(r.stdout)); got != s.want {
			t.Errorf("after %q: repo access says %q, want %q", s.args, r.stdout, s.want)
		}
	}
}

// stripNames turns "owner alice (4242)" into "owner 4242", as describeAccess
// shows an id the user database knows.
func stripNames(s string) string {
	var out []string
	for _, part := range strings.Split(s, ", ") {
		kind, rest, _ := strings.Cut(part, " ")
		if i := strings.LastIndex(rest, " ("); i >= 0 && strings.HasSuffix(rest, ")") {
			rest = rest[i+2 : len(rest)-1]
		}
		out = append(out, kind+" "+rest)
	}
	return strings.Join(out, ", ")
}

func TestLookupID(t *testing.T) {
	lookup := func(s string) (string, error) {
		switch s {
		case "alice":
			return "1001", nil
		case "odd":
			return "not-a-number", nil
		}
		return "", errors.New("unknown " + s)
	}
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{"0", 0, true},
		{"4242", 4242, true},
		{"4294967295", 4294967295, true},
		{"alice", 1001, true},
		{"bob", 0, false},
		{"odd", 0, false},
		{"4294967296", 0, false}, // not a uint32: looked up as a name
		{"-1", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, err := lookupID(tc.in, lookup)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("lookupID(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestRepoAccessUnknownRepository: repo access of a name never added fails
// in one line and creates no record.
func TestRepoAccessUnknownRepository(t *testing.T) {
	root := t.TempDir()
	r := gitfs(t, "--root", root, "repo", "access", "nope", "--public")
	if r.code != 1 || !strings.Contains(r.stderr, "no such repository") {
		t.Errorf("exit %d, stderr %q; want 1 and no such repository", r.code, r.stderr)
	}
	requireOneLine(t, "stderr", r.stderr)
	if matches, _ := filepath.Glob(filepath.Join(root, "mirrors", "*")); len(matches) > 0 {
		t.Errorf("mirrors/ holds %v", matches)
	}
	if _, err := os.Stat(filepath.Join(root, "mirrors", "nope.access.json")); err == nil {
		t.Error("an access record was written for an unknown repository")
	}
}
