package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/workspace"
)

func TestBadInput(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ctx := context.Background()
	e.create("good")
	before := e.fs.List()
	for _, name := range []string{"../x", "a/b", "@x", "", ".x", "x y", strings.Repeat("a", 300), "a\x00b"} {
		if _, err := e.fs.Create(ctx, name, workspace.Spec{Repo: "demo", Commit: e.commit}); err == nil {
			t.Errorf("create %q: no error", name)
		}
		if err := e.fs.Remove(name); err == nil {
			t.Errorf("remove %q: no error", name)
		}
		if workspace.ValidateName(name) == nil {
			t.Errorf("ValidateName(%q) accepted it", name)
		}
	}
	for _, spec := range []workspace.Spec{
		{Repo: "demo", Commit: "main"},
		{Repo: "demo", Commit: strings.Repeat("1", 40)},
		{Repo: "nope", Commit: e.commit},
		{Commit: e.commit},
	} {
		if _, err := e.fs.Create(ctx, "x", spec); err == nil {
			t.Errorf("create with %+v: no error", spec)
		}
	}
	if _, err := e.fs.Create(ctx, "good", workspace.Spec{Repo: "demo", Commit: e.commit}); !errors.Is(err, workspace.ErrExists) {
		t.Errorf("create existing: %v", err)
	}
	if err := e.fs.Remove("missing"); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("remove missing: %v", err)
	}
	if _, err := e.fs.Status("missing"); !errors.Is(err, workspace.ErrNotFound) {
		t.Errorf("status missing: %v", err)
	}
	after := e.fs.List()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("list changed: %v -> %v", before, after)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "workspaces"))
	if len(entries) != 1 || entries[0].Name() != "good" {
		t.Errorf("workspaces on disk: %v", entries)
	}
	for _, p := range []string{"x", "nope"} {
		if _, err := os.Stat(filepath.Join(e.mnt, p)); !os.IsNotExist(err) {
			t.Errorf("%s in mount: %v", p, err)
		}
	}
	// Remove really removes, from the mount too.
	if err := e.fs.Remove("good"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.mnt, "good")); !os.IsNotExist(err) {
		t.Errorf("removed workspace still in mount: %v", err)
	}
	// A name can be reused after removal.
	e.create("good")
	if got := readFile(t, filepath.Join(e.mnt, "good/README.md")); got != "hello gitfs\n" {
		t.Errorf("recreated workspace: %q", got)
	}
	keep, err := workspace.Commits(e.root)
	if err != nil || len(keep) != 1 || !keep[e.commit] {
		t.Errorf("WorkspaceCommits: %v %v", keep, err)
	}
}

func TestConcurrentWorkspaces(t *testing.T) {
	e := newEnv(t, append(sampleFiles(), gittest.Generate(200, 2)...))
	want := gittest.Archive(t, e.repo.Dir, e.commit)
	d := 5 * time.Second
	if s := os.Getenv("GITFS_STRESS_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		d = time.Duration(n) * time.Second
	}
	var wss []string
	for i := 0; i < 4; i++ {
		wss = append(wss, e.create(fmt.Sprintf("w%d", i)))
	}
	var paths []string
	for p, n := range want {
		if n.Kind == "file" {
			paths = append(paths, p)
		}
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	final := make([]map[string]string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ws := wss[g%4]
			rng := rand.New(rand.NewSource(int64(g)))
			mine := map[string]string{}
			final[g] = mine
			for i := 0; time.Now().Before(deadline); i++ {
				// read an unchanged lower file and check it
				p := paths[rng.Intn(len(paths))]
				if strings.HasPrefix(p, "README") || strings.HasPrefix(p, "src/") {
					continue
				}
				b, err := os.ReadFile(filepath.Join(ws, p))
				if err != nil {
					errs <- err
					return
				}
				if gittest.Node(want[p]).Kind == "file" && len(b) == 0 && p != "empty" {
					errs <- fmt.Errorf("%s empty", p)
					return
				}
				// write, rewrite, rename my own files; copy up a lower one
				name := fmt.Sprintf("g%d-%d", g, i%5)
				content := fmt.Sprintf("%d %d %s", g, i, strings.Repeat("x", rng.Intn(5000)))
				tmp := filepath.Join(ws, name+".tmp")
				if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
					errs <- err
					return
				}
				if err := os.Rename(tmp, filepath.Join(ws, name)); err != nil {
					errs <- err
					return
				}
				mine[name] = content
				mod := fmt.Sprintf("src/deep/g%d", g)
				if err := os.WriteFile(filepath.Join(ws, mod), []byte(content), 0o644); err != nil {
					errs <- err
					return
				}
				mine[mod] = content
				if _, err := os.ReadDir(filepath.Join(ws, "src")); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g, mine := range final {
		for p, c := range mine {
			if got := readFile(t, filepath.Join(wss[g%4], p)); got != c {
				t.Errorf("workspace %d %s: got %d bytes, want %d", g%4, p, len(got), len(c))
			}
		}
		// the other workspaces never see it
		for w := range wss {
			if w == g%4 {
				continue
			}
			if _, err := os.Stat(filepath.Join(wss[w], fmt.Sprintf("g%d-0", g))); !os.IsNotExist(err) {
				t.Errorf("workspace %d sees workspace %d's file: %v", w, g%4, err)
			}
		}
	}
}

func TestUpdate(t *testing.T) {
	files := sampleFiles()
	e := newEnv(t, files)
	var files2 []gittest.File
	for _, f := range files {
		switch f.Path {
		case "README.md":
			f.Content = []byte("hello gitfs, version two\n")
		case "src/a.go":
			continue
		case "src/deep/other.txt":
			f.Content = []byte("other v2\n")
		}
		files2 = append(files2, f)
	}
	files2 = append(files2, gittest.File{Path: "src/added.go", Content: []byte("package added\n")})
	c2 := e.repo.Commit(t, "main", "second", files2)
	if _, err := e.ms.Fetch(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	ws := e.create("up")
	old, err := os.Open(filepath.Join(ws, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := os.Stat(filepath.Join(ws, "src/added.go")); !os.IsNotExist(err) {
		t.Fatal(err)
	}
	aIno := inode(t, filepath.Join(ws, "src/b.go"))
	if err := os.WriteFile(filepath.Join(ws, "bin/run.sh"), []byte("local\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.Update(context.Background(), "up", workspace.Spec{Rev: "main", Commit: c2}, false); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := old.ReadAt(buf, 0)
	if string(buf[:n]) != "hello gitfs\n" {
		t.Errorf("old handle reads %q after update", buf[:n])
	}
	if got := readFile(t, filepath.Join(ws, "README.md")); got != "hello gitfs, version two\n" {
		t.Errorf("new open reads %q", got)
	}
	if got := readFile(t, filepath.Join(ws, "src/added.go")); got != "package added\n" {
		t.Errorf("added file: %q", got)
	}
	if _, err := os.Stat(filepath.Join(ws, "src/a.go")); !os.IsNotExist(err) {
		t.Errorf("removed file still there: %v", err)
	}
	if got := readFile(t, filepath.Join(ws, "bin/run.sh")); got != "local\n" {
		t.Errorf("local change lost: %q", got)
	}
	if got := inode(t, filepath.Join(ws, "src/b.go")); got != aIno {
		t.Errorf("inode of unchanged file changed across update")
	}
	if l := e.fs.List(); l[0].Commit != c2 {
		t.Errorf("list after update: %+v", l)
	}
	// A local change on a path that changed upstream: refused, nothing changed.
	ws2 := e.create("conflict")
	if err := os.WriteFile(filepath.Join(ws2, "src/deep/other.txt"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(ws2, "src/a.go")); err != nil {
		t.Fatal(err)
	}
	err = e.fs.Update(context.Background(), "conflict", workspace.Spec{Commit: c2}, false)
	var ce *workspace.ConflictError
	if !errors.As(err, &ce) || strings.Join(ce.Paths, ",") != "src/a.go,src/deep/other.txt" {
		t.Fatalf("conflicting update: %v", err)
	}
	if got := readFile(t, filepath.Join(ws2, "src/deep/other.txt")); got != "mine\n" {
		t.Errorf("refused update changed the file: %q", got)
	}
	if got := readFile(t, filepath.Join(ws2, "README.md")); got != "hello gitfs\n" {
		t.Errorf("refused update switched commit: %q", got)
	}
	if err := e.fs.Update(context.Background(), "conflict", workspace.Spec{Commit: c2}, true); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(ws2, "src/deep/other.txt")); got != "other v2\n" {
		t.Errorf("after discarding: %q", got)
	}
	want := gittest.Archive(t, e.repo.Dir, c2)
	if d := gittest.Diff(want, gittest.ReadDir(t, ws2), 10); len(d) > 0 {
		t.Errorf("after update with discard, differs from archive: %v", d)
	}
	// A moved branch shows the new commit on the next lookup.
	if got := readFile(t, filepath.Join(e.mnt, "@demo/heads/main/README.md")); got != "hello gitfs, version two\n" {
		t.Errorf("browse main after fetch: %q", got)
	}
}

// TestCorruptObject: a corrupt blob gives EIO for that file only.
func TestCorruptObject(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	bad := make([]byte, 200<<10)
	rng.Read(bad)
	e := newEnv(t, append(sampleFiles(), gittest.File{Path: "bad.bin", Content: bad}))
	id := gittest.Git(t, e.repo.Dir, "rev-parse", "main:bad.bin")
	ws := e.create("c")
	idxs, _ := filepath.Glob(filepath.Join(e.root, "snapshots", e.commit, "objects/pack/*.idx"))
	corrupted := false
	for _, idx := range idxs {
		in, err := os.Open(idx)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("git", "show-index")
		cmd.Stdin = in
		out, err := cmd.Output()
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[1] == id {
				off, _ := strconv.ParseInt(f[0], 10, 64)
				pack := strings.TrimSuffix(idx, ".idx") + ".pack"
				pf, err := os.OpenFile(pack, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				pf.WriteAt(bytes.Repeat([]byte{0xff}, 64), off+40)
				pf.Close()
				corrupted = true
			}
		}
	}
	if !corrupted {
		t.Fatal("blob not found in the snapshot's packs")
	}
	_, err := os.ReadFile(filepath.Join(ws, "bad.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("corrupt blob: %v, want EIO", err)
	}
	if got := readFile(t, filepath.Join(ws, "src/a.go")); got != "package a\n" {
		t.Errorf("other file after EIO: %q", got)
	}
	if _, err := os.ReadDir(ws); err != nil {
		t.Errorf("readdir after EIO: %v", err)
	}
}

// TestLocks: locks between processes on this host (kernel-local).
func TestLocks(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	e := newEnv(t, sampleFiles())
	ws := e.create("l")
	for _, p := range []string{"README.md", "newfile"} {
		f, err := os.OpenFile(filepath.Join(ws, p), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("flock", "-n", filepath.Join(ws, p), "true").Run(); err == nil {
			t.Errorf("%s: a second process got the lock", p)
		}
		f.Close()
		if err := exec.Command("flock", "-n", filepath.Join(ws, p), "true").Run(); err != nil {
			t.Errorf("%s: lock not released: %v", p, err)
		}
	}
}

// TestUnmountBusy: Unmount with a file still open neither hangs nor leaves
// a mount behind.
func TestUnmountBusy(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("busy")
	f, err := os.Open(filepath.Join(ws, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error, 1)
	go func() { done <- e.fs.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("unmount: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Unmount hangs while a file is open")
	}
	if mounted(e.mnt) {
		t.Errorf("%s still mounted", e.mnt)
	}
}

// TestTmpfileLink: an O_TMPFILE file linked into place keeps its content.
func TestTmpfileLink(t *testing.T) {
	e := newEnv(t, sampleFiles())
	ws := e.create("tmp")
	fd, err := unix.Open(filepath.Join(ws, "src"), unix.O_TMPFILE|unix.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("anonymous")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, filepath.Join(ws, "src/named"), unix.AT_SYMLINK_FOLLOW); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(ws, "src/named")); got != "anonymous" {
		t.Errorf("linked tmpfile reads %q", got)
	}
	st, err := e.fs.Status("tmp")
	if err != nil || len(st) != 1 || st[0].Path != "src/named" || st[0].Op != 'A' {
		t.Errorf("status: %v %v", st, err)
	}
}

// TestGitInWorkspace: git itself (lock files, renames, fsync, mmap of
// packs) works in a workspace.
func TestGitInWorkspace(t *testing.T) {
	e := newEnv(t, append(sampleFiles(), gittest.Generate(100, 5)...))
	ws := e.create("git")
	script := `set -e; cd ` + ws + `
export GIT_CONFIG_NOSYSTEM=1 HOME=/tmp GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q . && git add -A && git commit -qm one
echo change >> README.md && git mv src/a.go src/a2.go && git commit -qam two
git gc -q --aggressive && git fsck --no-progress && git status --porcelain | wc -l`
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("git in workspace: %v\n%s", err, out)
	}
}
