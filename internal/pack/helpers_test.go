package pack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

// object is what git says an object is.
type object struct {
	typ  string
	data []byte
}

// testRepo is a git repository made for these tests, with its objects
// loose, and what `git cat-file` says of each.
type testRepo struct {
	dir     string
	objects map[plumbing.Hash]object
}

// newTestRepo commits a tree that gives pack-objects something to do:
// versions of one file (delta chains), a blob larger than BaseItemMax, an
// empty blob, a symlink and nested trees, over two commits.
func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	dir := t.TempDir()
	r := &testRepo{dir: dir}
	r.git(t, "", "init", "-q", "-b", "main")
	base := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 1500)
	write := func(p string, b []byte) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 30; i++ {
		v := append([]byte(nil), base...)
		copy(v[i*1000:], fmt.Sprintf("edit %d", i))
		write(fmt.Sprintf("versions/v%02d.txt", i), append(v, fmt.Sprintf("tail %d\n", i)...))
	}
	big := make([]byte, BaseItemMax+12345)
	for i := range big {
		big[i] = byte(i*7 + i/4096)
	}
	write("big.bin", big)
	write("empty", nil)
	for i := 0; i < 20; i++ {
		write(fmt.Sprintf("deep/d%d/e/f.txt", i%5), []byte(fmt.Sprintf("file %d\n", i)))
	}
	if err := os.Symlink("versions/v00.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	r.git(t, "", "add", "-A")
	r.git(t, "", "commit", "-q", "-m", "first")
	write("versions/v00.txt", append(base, "second\n"...))
	r.git(t, "", "commit", "-q", "-am", "second")
	r.objects = r.catAll(t)
	return r
}

func (r *testRepo) git(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", r.dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, stderr.String())
	}
	return string(out)
}

// catAll reads every object through one `git cat-file --batch`.
func (r *testRepo) catAll(t *testing.T) map[plumbing.Hash]object {
	t.Helper()
	out := r.git(t, "", "cat-file", "--batch-all-objects", "--batch")
	br := bufio.NewReader(strings.NewReader(out))
	objs := map[plumbing.Hash]object{}
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("cat-file: %q", line)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, n+1) // and its newline
		if _, err := io.ReadFull(br, data); err != nil {
			t.Fatal(err)
		}
		objs[plumbing.NewHash(f[0])] = object{typ: f[1], data: data[:n]}
	}
}

// pack writes every object into one pack under dir with pack-objects'
// extra args and returns its base path (dir/pack-<sha>).
func (r *testRepo) pack(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return r.packOf(t, dir, func(object) bool { return true }, args...)
}

// packOf is pack for the objects that keep selects.
func (r *testRepo) packOf(t *testing.T, dir string, keep func(object) bool, args ...string) string {
	t.Helper()
	var ids strings.Builder
	for id, o := range r.objects {
		if keep(o) {
			ids.WriteString(id.String() + "\n")
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := r.git(t, ids.String(), append(append([]string{"pack-objects", "-q"}, args...), filepath.Join(dir, "pack"))...)
	return filepath.Join(dir, "pack-"+strings.TrimSpace(out))
}

// deltas counts the deltified entries of the pack at base.
func deltas(t *testing.T, base string) (n int) {
	t.Helper()
	out, err := exec.Command("git", "verify-pack", "-v", base+".idx").Output()
	if err != nil {
		t.Fatalf("verify-pack: %v", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 7 && len(f[0]) == 40 {
			n++ // an entry with depth and base columns
		}
	}
	return n
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(to)
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
