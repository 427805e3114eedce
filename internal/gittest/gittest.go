// Package gittest builds real git repositories for tests and benchmarks,
// locally and quickly (git fast-import), with no network.
package gittest

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TB is the part of testing.TB the helpers need.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	TempDir() string
}

var _ TB = (testing.TB)(nil)

// Git runs git in dir and returns its trimmed stdout, failing the test on error.
func Git(t TB, dir string, args ...string) string {
	t.Helper()
	out, err := GitErr(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// GitErr runs git in dir and returns its trimmed stdout.
func GitErr(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=gitfs test", "GIT_AUTHOR_EMAIL=test@gitfs.invalid",
		"GIT_COMMITTER_NAME=gitfs test", "GIT_COMMITTER_EMAIL=test@gitfs.invalid",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+os.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// File is one path of a generated tree.
type File struct {
	Path    string
	Content []byte
	Mode    string // "100644" (default), "100755", "120000" (content is the target)
}

// Repo is a non-bare repository on disk with a work tree.
type Repo struct {
	Dir string
}

// NewRepo creates an empty repository with branch main.
func NewRepo(t TB) *Repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote")
	Git(t, "", "init", "-q", "-b", "main", dir)
	Git(t, dir, "config", "user.name", "gitfs test")
	Git(t, dir, "config", "user.email", "test@gitfs.invalid")
	return &Repo{Dir: dir}
}

// Commit replaces the tree of branch (creating it) with files, using
// fast-import so that large trees take seconds, and returns the commit id.
func (r *Repo) Commit(t TB, branch, message string, files []File) string {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "commit refs/heads/%s\n", branch)
	fmt.Fprintf(&b, "committer gitfs test <test@gitfs.invalid> 1704164645 +0000\n")
	fmt.Fprintf(&b, "data %d\n%s\n", len(message), message)
	if parent, err := GitErr(r.Dir, "rev-parse", "--verify", "-q", "refs/heads/"+branch); err == nil && parent != "" {
		fmt.Fprintf(&b, "from %s\n", parent)
	}
	b.WriteString("deleteall\n")
	for _, f := range files {
		mode := f.Mode
		if mode == "" {
			mode = "100644"
		}
		if mode == "160000" {
			fmt.Fprintf(&b, "M %s %s %s\n", mode, string(f.Content), f.Path)
			continue
		}
		fmt.Fprintf(&b, "M %s inline %s\ndata %d\n", mode, f.Path, len(f.Content))
		b.Write(f.Content)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	cmd := exec.Command("git", "fast-import", "--quiet", "--force")
	cmd.Dir = r.Dir
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fast-import: %v: %s", err, out)
	}
	return Git(t, r.Dir, "rev-parse", "refs/heads/"+branch)
}

// Generate returns n files with a realistic mix: mostly small source-like
// text files, some medium, a few large ones, in a directory hierarchy
// ~6 levels deep, about 20 files per directory. The same seed gives the
// same tree.
func Generate(n int, seed int64) []File {
	rng := rand.New(rand.NewSource(seed))
	files := make([]File, 0, n)
	words := []string{"func", "return", "if", "err", "nil", "struct", "package", "import", "for", "range", "go", "defer"}
	for i := 0; i < n; i++ {
		dir := []string{}
		x := i / 20
		for x > 0 {
			dir = append(dir, fmt.Sprintf("d%02d", x%30))
			x /= 30
		}
		var size int
		switch r := rng.Intn(1000); {
		case r < 700:
			size = 200 + rng.Intn(4000)
		case r < 970:
			size = 4000 + rng.Intn(40000)
		case r < 998:
			size = 40000 + rng.Intn(200000)
		default:
			size = 200000 + rng.Intn(800000)
		}
		var content bytes.Buffer
		for content.Len() < size {
			content.WriteString(words[rng.Intn(len(words))])
			if rng.Intn(8) == 0 {
				fmt.Fprintf(&content, " %d\n", rng.Int63())
			} else {
				content.WriteByte(' ')
			}
		}
		mode := "100644"
		if rng.Intn(50) == 0 {
			mode = "100755"
		}
		path := filepath.ToSlash(filepath.Join(append(dir, fmt.Sprintf("f%06d.txt", i))...))
		files = append(files, File{Path: path, Content: content.Bytes()[:size], Mode: mode})
	}
	return files
}
