package integration

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/daemon"
	"github.com/gitfs/gitfs/internal/gittest"
)

// What the CLI says when things go wrong, and its --json answers.

// TestGitErrorKeepsItsCause: git's reason survives into gitfs's one-line
// error, not only git's boilerplate after it.
func TestGitErrorKeepsItsCause(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	notRepo := t.TempDir()
	r := gitfs(t, root, "repo", "add", "demo", "file://"+notRepo)
	if r.code == 0 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "does not appear to be a git repository") {
		t.Fatalf("repo add of a directory that is no repository: exit %d: %s", r.code, r.stderr)
	}
}

// TestAmbiguousShortSHA: an abbreviated sha two commits start with is
// called ambiguous, with the candidates, not unknown.
func TestAmbiguousShortSHA(t *testing.T) {
	repo, _ := newRemote(t, 5, 51)
	const emptyTree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	gittest.Git(t, repo.Dir, "mktree")
	body := func(i int) string {
		return fmt.Sprintf("tree %s\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\ntwin %d\n", emptyTree, i)
	}
	seen := map[string]int{}
	pair := []int{}
	for i := 0; len(pair) == 0; i++ {
		sum := sha1.Sum([]byte(fmt.Sprintf("commit %d\x00%s", len(body(i)), body(i))))
		p := hex.EncodeToString(sum[:])[:4]
		if j, ok := seen[p]; ok {
			pair = []int{j, i}
		}
		seen[p] = i
	}
	var ids []string
	for n, i := range pair {
		cmd := exec.Command("git", "-C", repo.Dir, "hash-object", "-t", "commit", "-w", "--stdin")
		cmd.Stdin = strings.NewReader(body(i))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
		gittest.Git(t, repo.Dir, "update-ref", fmt.Sprintf("refs/heads/twin%d", n), ids[n])
	}
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	r := gitfs(t, root, "rev-parse", "demo", ids[0][:4])
	if r.code == 0 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "ambiguous") || !strings.Contains(r.stderr, ids[1][:12]) {
		t.Fatalf("rev-parse of an ambiguous prefix: exit %d: %s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "repo fetch") {
		t.Errorf("an ambiguous sha is not cured by fetching: %s", r.stderr)
	}
	if got := strings.TrimSpace(mustGitfs(t, root, "rev-parse", "demo", ids[1][:10])); got != ids[1] {
		t.Errorf("rev-parse of a longer prefix: %s, want %s", got, ids[1])
	}
}

// TestRepoListShowsLastFetchError: a failing fetch is visible in repo list
// (text and --json) until a fetch works again.
func TestRepoListShowsLastFetchError(t *testing.T) {
	repo, _ := newRemote(t, 5, 52)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	moved := repo.Dir + ".moved"
	if err := os.Rename(repo.Dir, moved); err != nil {
		t.Fatal(err)
	}
	if r := gitfs(t, root, "repo", "fetch", "demo"); r.code == 0 {
		t.Fatal("fetch from a remote that is gone succeeded")
	}
	text := mustGitfs(t, root, "repo", "list")
	if !strings.Contains(text, "LAST-ERROR") || !strings.Contains(text, "does not appear to be a git repository") {
		t.Errorf("repo list after a failed fetch:\n%s", text)
	}
	var infos []struct {
		Name      string `json:"name"`
		LastError string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "repo", "list", "--json")), &infos); err != nil || len(infos) != 1 || infos[0].LastError == "" {
		t.Errorf("repo list --json: %+v, %v", infos, err)
	}
	if err := os.Rename(moved, repo.Dir); err != nil {
		t.Fatal(err)
	}
	mustGitfs(t, root, "repo", "fetch", "demo")
	if text := mustGitfs(t, root, "repo", "list"); strings.Contains(text, "does not appear") {
		t.Errorf("repo list after the fetch worked again:\n%s", text)
	}
}

// TestWsCreateFetch: --fetch creates a workspace of a commit pushed after
// the mirror's last fetch; without it, the rev is unknown.
func TestWsCreateFetchAndJSON(t *testing.T) {
	repo, _ := newRemote(t, 5, 53)
	root := filepath.Join(t.TempDir(), "root")
	mustGitfs(t, root, "repo", "add", "demo", repo.Dir)
	serve(t, root, "")
	pushed := repo.Commit(t, "main", "just pushed", gittest.Generate(6, 53))
	if r := gitfs(t, root, "ws", "create", "old", "--repo", "demo", "--rev", pushed); r.code == 0 {
		t.Fatal("ws create of a commit the mirror has not fetched succeeded without --fetch")
	}
	ws := wsCreate(t, root, "new", "--repo", "demo", "--rev", pushed, "--fetch")
	if err := os.WriteFile(filepath.Join(ws, "added.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	var list []daemon.Workspace
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "ws", "list", "--json")), &list); err != nil || len(list) != 1 ||
		list[0].Name != "new" || list[0].Commit != pushed || list[0].Path != ws || list[0].ChangedFiles != 1 {
		t.Errorf("ws list --json: %+v, %v", list, err)
	}
	var changes []daemon.Change
	if err := json.Unmarshal([]byte(mustGitfs(t, root, "ws", "status", "new", "--json")), &changes); err != nil ||
		len(changes) != 1 || changes[0].Op != "A" || changes[0].Path != "added.txt" {
		t.Errorf("ws status --json: %+v, %v", changes, err)
	}
}

// TestGitDubiousOwnershipKeepsItsCause: a remote owned by another user,
// which git refuses, says so (and how git would allow it).
func TestGitDubiousOwnershipKeepsItsCause(t *testing.T) {
	requireRoot(t)
	repo, _ := newRemote(t, 5, 54)
	if out, err := exec.Command("chown", "-R", "65534:65534", repo.Dir).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v: %s", err, out)
	}
	r := gitfs(t, filepath.Join(t.TempDir(), "root"), "repo", "add", "demo", repo.Dir)
	if r.code == 0 || !isOneErrorLine(r.stderr) || !strings.Contains(r.stderr, "detected dubious ownership") || !strings.Contains(r.stderr, "safe.directory") {
		t.Fatalf("repo add of another user's repository: exit %d: %s", r.code, r.stderr)
	}
}
