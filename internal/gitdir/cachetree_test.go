package gitdir

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME=/nonexistent", "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestWithCacheTree: git reads the extension and trusts it: git write-tree
// answers the root id the extension names without looking at the entries
// (so a wrong id shows through), and the extension's layout is git's own.
func TestWithCacheTree(t *testing.T) {
	dir := t.TempDir()
	git(t, dir, "init", "-q", "-b", "main")
	for _, f := range []string{"a", "d/b", "d/e/c", "z"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "c")
	id := func(rev string) [20]byte {
		var out [20]byte
		b, _ := hex.DecodeString(git(t, dir, "rev-parse", rev))
		copy(out[:], b)
		return out
	}
	root := &CacheTree{Entries: 4, ID: id("HEAD^{tree}"), Subtrees: []*CacheTree{
		{Name: "d", Entries: 2, ID: id("HEAD:d"), Subtrees: []*CacheTree{{Name: "e", Entries: 1, ID: id("HEAD:d/e")}}},
	}}
	// An index without extensions: git's own, stripped of them.
	git(t, dir, "read-tree", "--reset", "HEAD")
	ownIndex, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	bare := stripExtensions(t, ownIndex)
	withOurs, err := WithCacheTree(bare, root)
	if err != nil {
		t.Fatal(err)
	}
	// git's own extension for the same tree is byte-identical to ours.
	if !bytes.Equal(withOurs, ownIndex) {
		t.Errorf("index with our cache tree differs from git's own (%d vs %d bytes)", len(withOurs), len(ownIndex))
	}
	// A wrong root id (of an object that exists: git checks that much)
	// shows through git write-tree: git trusts the extension.
	wrong := *root
	wrong.ID = id("HEAD:d")
	forged, err := WithCacheTree(bare, &wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git", "index"), forged, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := git(t, dir, "write-tree"); got != hex.EncodeToString(wrong.ID[:]) {
		t.Errorf("git write-tree = %s: git did not use the extension", got)
	}
	if _, err := WithCacheTree([]byte("nope"), root); err == nil {
		t.Error("a non-index accepted")
	}
}

// stripExtensions returns an index without its extensions: header and
// entries (git read-tree writes only TREE after them), new checksum.
func stripExtensions(t *testing.T, idx []byte) []byte {
	t.Helper()
	i := bytes.Index(idx, []byte("TREE"))
	if i < 0 {
		t.Fatal("git's index has no TREE extension")
	}
	body := append([]byte(nil), idx[:i]...)
	sum := sha1.Sum(body)
	return append(body, sum[:]...)
}
