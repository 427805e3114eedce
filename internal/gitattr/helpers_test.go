package gitattr

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// git is the oracle: these helpers build repositories locally, with no
// configuration but the repository's own (no system or global
// attributes or config, so no LFS filter driver either).

func gitEnv(home string) []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_ATTR_NOSYSTEM=1",
		"HOME="+home, "XDG_CONFIG_HOME="+home,
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"LC_ALL=C")
}

// runGit runs git in dir with stdin and returns stdout; stderr goes into
// the error.
func runGit(dir string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(filepath.Dir(dir))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func mustGit(t testing.TB, dir string, stdin []byte, args ...string) []byte {
	t.Helper()
	out, err := runGit(dir, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blobFile is one file of a test tree, its blob stored as is.
type blobFile struct {
	path    string
	content string
	mode    string // "" for 100644; "120000" makes a symlink to content
}

// repo is a repository whose index and HEAD hold a tree of raw blobs.
type repo struct {
	dir   string
	blobs map[string]string // path -> blob id
	files map[string]blobFile
}

// newRepo commits files with their blobs exactly as given (no clean
// conversion: hash-object --no-filters), so that a blob may hold CRLF or
// NUL however its attributes read.
func newRepo(t testing.TB, files []blobFile) *repo {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "src")
	mustGit(t, base, nil, "init", "-q", "-b", "main", dir)
	raw := filepath.Join(base, "raw")
	r := &repo{dir: dir, blobs: map[string]string{}, files: map[string]blobFile{}}
	var list bytes.Buffer
	for i, f := range files {
		p := filepath.Join(raw, fmt.Sprint(i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.content), 0o644); err != nil {
			t.Fatal(err)
		}
		list.WriteString(p + "\n")
	}
	ids := strings.Fields(string(mustGit(t, dir, list.Bytes(), "hash-object", "-w", "--no-filters", "--stdin-paths")))
	if len(ids) != len(files) {
		t.Fatalf("hash-object gave %d ids for %d files", len(ids), len(files))
	}
	var info bytes.Buffer
	for i, f := range files {
		mode := f.mode
		if mode == "" {
			mode = "100644"
		}
		fmt.Fprintf(&info, "%s %s\t%s\n", mode, ids[i], f.path)
		r.blobs[f.path] = ids[i]
		r.files[f.path] = f
	}
	mustGit(t, dir, info.Bytes(), "update-index", "--add", "--index-info")
	tree := strings.TrimSpace(string(mustGit(t, dir, nil, "write-tree")))
	commit := strings.TrimSpace(string(mustGit(t, dir, nil, "commit-tree", "-m", "test", tree)))
	mustGit(t, dir, nil, "update-ref", "refs/heads/main", commit)
	return r
}

// rules are the Rules of the repository's tree, built as a caller would:
// every .gitattributes blob, added by directory.
func (r *repo) rules() *Rules {
	var rs Rules
	paths := make([]string, 0, len(r.files))
	for p := range r.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if filepath.Base(p) == ".gitattributes" {
			dir := filepath.Dir(p)
			if dir == "." {
				dir = ""
			}
			rs.Add(dir, []byte(r.files[p].content))
		}
	}
	return &rs
}

// checkAttr is `git check-attr --cached -a` for paths: what checkout
// sees (attributes read from the index, as checkout reads them).
func checkAttr(t testing.TB, dir string, paths []string) map[string][]Attr {
	t.Helper()
	in := strings.Join(paths, "\x00") + "\x00"
	out := mustGit(t, dir, []byte(in), "check-attr", "--cached", "-a", "-z", "--stdin")
	got := map[string][]Attr{}
	for _, p := range paths {
		got[p] = nil
	}
	f := strings.Split(string(out), "\x00")
	for i := 0; i+2 < len(f); i += 3 {
		a := Attr{Name: f[i+1]}
		switch v := f[i+2]; v {
		case "set":
			a.State = Set
		case "unset":
			a.State = Unset
		default:
			a.State, a.Value = Value, v
		}
		got[f[i]] = append(got[f[i]], a)
	}
	for p := range got {
		sort.Slice(got[p], func(i, j int) bool { return got[p][i].Name < got[p][j].Name })
	}
	return got
}

func fmtAttrs(as []Attr) string {
	var b []string
	for _, a := range as {
		b = append(b, a.Name+"="+a.String())
	}
	return strings.Join(b, " ")
}

// compareAttrs checks Lookup against check-attr for every path.
func compareAttrs(t *testing.T, rs *Rules, dir string, paths []string) {
	t.Helper()
	seen := map[string]bool{}
	uniq := paths[:0:0]
	for _, p := range paths {
		if !seen[p] {
			seen[p] = true
			uniq = append(uniq, p)
		}
	}
	paths = uniq
	want := checkAttr(t, dir, paths)
	bad := 0
	for _, p := range paths {
		got := fmtAttrs(rs.Lookup(p).All())
		// "check-attr" prints a value of "set" or "unset" as it
		// prints the states; compare as printed.
		if w := fmtAttrs(want[p]); got != w {
			if bad < 20 {
				t.Errorf("%q:\n  got  %s\n  git  %s", p, got, w)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d paths differ", bad, len(paths))
	}
}

// clone is `git clone --no-local` with config given as -c options, so
// that every blob comes from a pack as in any real clone. It returns
// the work tree and git's stderr.
func clone(t testing.TB, src string, config ...string) (string, string, error) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone")
	args := []string{}
	for _, c := range config {
		args = append(args, "-c", c)
	}
	args = append(args, "clone", "-q", "--no-local", src, dst)
	cmd := exec.Command("git", args...)
	cmd.Env = gitEnv(filepath.Dir(dst))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return dst, stderr.String(), err
}

func mustReadFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
