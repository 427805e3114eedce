package gitattr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestRealRepo checks a real repository's HEAD, named by
// GITATTR_REPO (a path to any git repository, e.g. a mirror of
// git/git): every path's attributes against check-attr, and every file
// of a fresh clone against Apply, under GITATTR_CONFIG (-c options,
// comma-separated). Skipped when GITATTR_REPO is unset.
func TestRealRepo(t *testing.T) {
	src := os.Getenv("GITATTR_REPO")
	if src == "" {
		t.Skip("GITATTR_REPO not set")
	}
	var config []string
	if c := os.Getenv("GITATTR_CONFIG"); c != "" {
		config = strings.Split(c, ",")
	}
	var cfg Config
	for _, c := range config {
		k, v, _ := strings.Cut(c, "=")
		var err error
		switch k {
		case "core.autocrlf":
			cfg2, e := ParseConfig(v, "")
			cfg.AutoCRLF, err = cfg2.AutoCRLF, e
		case "core.eol":
			cfg2, e := ParseConfig("", v)
			cfg.EOL, err = cfg2.EOL, e
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "clone")
	args := []string{}
	for _, c := range config {
		args = append(args, "-c", c)
	}
	args = append(args, "clone", "-q", "--depth", "1", "file://"+abs, dst)
	cmd := exec.Command("git", args...)
	cmd.Env = gitEnv(filepath.Dir(dst))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("clone: %v: %s", err, out)
	}

	var entries []entry
	ls := mustGit(t, dst, nil, "ls-tree", "-r", "-z", "HEAD")
	for _, rec := range strings.Split(strings.TrimSuffix(string(ls), "\x00"), "\x00") {
		meta, p, _ := strings.Cut(rec, "\t")
		f := strings.Fields(meta)
		if f[1] == "blob" {
			entries = append(entries, entry{f[0], f[2], p})
		}
	}
	blobs := catBlobs(t, dst, entries)

	var rs Rules
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.path)
		if path.Base(e.path) == ".gitattributes" {
			dir := path.Dir(e.path)
			if dir == "." {
				dir = ""
			}
			rs.Add(dir, blobs[e.id])
		}
	}
	sort.Strings(paths)
	compareAttrs(t, &rs, dst, paths)

	converted, bad := 0, 0
	for _, e := range entries {
		if e.mode == "120000" || e.mode == "160000" {
			continue
		}
		conv := rs.Lookup(e.path).Conversion(cfg)
		got, err := conv.Apply(e.id, blobs[e.id])
		var encErr *EncodingError
		if err != nil && !errors.As(err, &encErr) {
			t.Errorf("%s: %v", e.path, err)
		}
		want, err := os.ReadFile(filepath.Join(dst, e.path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, blobs[e.id]) {
			converted++
		}
		if !bytes.Equal(got, want) {
			bad++
			t.Errorf("%s (%s): differs from the clone's", e.path, conv)
		}
	}
	t.Logf("%d paths, %d .gitattributes, %d files converted by git, %d differ", len(paths), len(rs.files), converted, bad)
}

type entry struct{ mode, id, path string }

func catBlobs(t *testing.T, dir string, entries []entry) map[string][]byte {
	t.Helper()
	var in bytes.Buffer
	for _, e := range entries {
		fmt.Fprintln(&in, e.id)
	}
	cmd := exec.Command("git", "cat-file", "--batch")
	cmd.Dir = dir
	cmd.Env = gitEnv(filepath.Dir(dir))
	cmd.Stdin = &in
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	br := bufio.NewReader(out)
	for range entries {
		var id, typ string
		var size int
		if _, err := fmt.Fscanf(br, "%s %s %d\n", &id, &typ, &size); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size+1)
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		blobs[id] = b[:size]
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return blobs
}
