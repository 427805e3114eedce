package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// cliEnv is the environment of one test's gitfs CLI processes: a
// marker that every process they start inherits (so the test can find any
// process left behind), and an exec path whose git-upload-pack is a wrapper
// the test controls through UPLOAD_PACK_* variables:
//
//	UPLOAD_PACK_COUNT=file   append one line per upload-pack run (one per clone or fetch)
//	UPLOAD_PACK_DELAY=secs   sleep first
//	UPLOAD_PACK_BLOCK=file   create file.started, then wait until file exists
type cliEnv struct {
	marker   string
	execPath string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	real := gittest.Git(t, "", "--exec-path")
	dir := filepath.Join(t.TempDir(), "git-exec-path")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "git-upload-pack" {
			continue
		}
		if err := os.Symlink(filepath.Join(real, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
[ -n "$UPLOAD_PACK_COUNT" ] && echo run >> "$UPLOAD_PACK_COUNT"
[ -n "$UPLOAD_PACK_DELAY" ] && sleep "$UPLOAD_PACK_DELAY"
if [ -n "$UPLOAD_PACK_BLOCK" ]; then
	: > "$UPLOAD_PACK_BLOCK.started"
	i=0
	while [ ! -e "$UPLOAD_PACK_BLOCK" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
fi
exec '` + filepath.Join(real, "git-upload-pack") + `' "$@"
`
	if err := os.WriteFile(filepath.Join(dir, "git-upload-pack"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	rand.Read(b[:])
	e := &cliEnv{marker: "GITFS_TEST_MARKER=" + hex.EncodeToString(b[:]), execPath: dir}
	t.Cleanup(func() { reap(t, e, 10*time.Second) })
	return e
}

// sub returns an env sharing e's exec path with a marker of its own, for a
// parallel subtest whose leftover-process checks must not see its siblings.
func (e *cliEnv) sub(t *testing.T) *cliEnv {
	var b [8]byte
	rand.Read(b[:])
	c := &cliEnv{marker: "GITFS_TEST_MARKER=" + hex.EncodeToString(b[:]), execPath: e.execPath}
	t.Cleanup(func() { reap(t, c, 10*time.Second) })
	return c
}

func (e *cliEnv) environ(extra []string) []string {
	// GORACE: a -race binary otherwise sleeps a second before exiting.
	return append(append(os.Environ(), e.marker, "GIT_EXEC_PATH="+e.execPath, "GORACE=atexit_sleep_ms=0"), extra...)
}

// cliProc is a gitfs process running in the background.
type cliProc struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
	res            result
}

// start runs gitfs --root root args... in the background with extra
// environment variables.
func (e *cliEnv) start(t *testing.T, extra []string, root string, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{done: make(chan struct{})}
	p.cmd = exec.Command(gitfsBin, append([]string{"--root", root}, args...)...)
	p.cmd.Env = e.environ(extra)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start gitfs %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		p.res = result{stdout: p.stdout.String(), stderr: p.stderr.String()}
		if err != nil {
			p.res.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				p.res.code = ee.ExitCode()
			}
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the process's result, failing the test if it takes longer
// than a minute.
func (p *cliProc) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
		return p.res
	case <-time.After(time.Minute):
		t.Fatalf("gitfs %s did not finish", strings.Join(p.cmd.Args[1:], " "))
		return result{}
	}
}

func (p *cliProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill9 kills gitfs itself, not its children: what git it started must die
// with it by itself.
func (p *cliProc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// run runs gitfs to completion.
func (e *cliEnv) run(t *testing.T, extra []string, root string, args ...string) result {
	t.Helper()
	return e.start(t, extra, root, args...).wait(t)
}

func (e *cliEnv) must(t *testing.T, extra []string, root string, args ...string) result {
	t.Helper()
	r := e.run(t, extra, root, args...)
	if r.code != 0 {
		t.Fatalf("gitfs %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// runMany starts n copies of the same command at once and waits for all.
func (e *cliEnv) runMany(t *testing.T, n int, extra []string, root string, args func(i int) []string) []result {
	t.Helper()
	procs := make([]*cliProc, n)
	for i := range procs {
		procs[i] = e.start(t, extra, root, args(i)...)
	}
	out := make([]result, n)
	for i, p := range procs {
		out[i] = p.wait(t)
	}
	return out
}

// leftovers lists live (not zombie) processes carrying this env's marker.
func (e *cliEnv) leftovers() []string {
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, p := range procs {
		env, err := os.ReadFile(filepath.Join(p, "environ"))
		if err != nil || !bytes.Contains(env, []byte(e.marker+"\x00")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(p, "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndex(s, ")")
		if i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		out = append(out, fmt.Sprintf("%s: %s", filepath.Base(p), strings.ReplaceAll(strings.TrimSpace(string(cmdline)), "\x00", " ")))
	}
	return out
}

// awaitNoProcs fails the test if processes started by gitfs outlive it
// by more than d; blocked upload-pack wrappers are expected to need only
// the time their sleep takes.
//
// git's own processes (clone, fetch, index-pack: those that write into the
// root) must be gone at once: they die with gitfs, they do not
// finish their work unsupervised.
func awaitNoProcs(t *testing.T, e *cliEnv, d time.Duration) {
	t.Helper()
	gitDeadline := time.Now().Add(400 * time.Millisecond)
	for {
		var writers []string
		for _, l := range e.leftovers() {
			cmd := strings.Fields(strings.SplitN(l, ": ", 2)[1] + " ")
			// The remote's side (upload-pack and the pack-objects --stdout it
			// runs) is not ours: it ends when it finds its reader gone.
			remote := strings.Contains(l, "upload-pack") || strings.Contains(l, "--stdout")
			if len(cmd) > 0 && filepath.Base(cmd[0]) == "git" && !remote {
				writers = append(writers, l)
			}
		}
		if len(writers) == 0 {
			break
		}
		if time.Now().After(gitDeadline) {
			reap(t, e, 0)
			t.Fatalf("git processes outlived the gitfs that started them:\n%s", strings.Join(writers, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(d)
	for {
		left := e.leftovers()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			reap(t, e, 0)
			t.Fatalf("processes left behind:\n%s", strings.Join(left, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reap kills whatever carries the marker after waiting up to d.
func reap(t *testing.T, e *cliEnv, d time.Duration) {
	deadline := time.Now().Add(d)
	for len(e.leftovers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range e.leftovers() {
		pid, _ := strconv.Atoi(strings.SplitN(l, ":", 2)[0])
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// tempsUnder lists every *.gitfs-tmp-* path under dirs.
func tempsUnder(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && strings.Contains(de.Name(), ".gitfs-tmp-") {
				out = append(out, p)
				if de.IsDir() {
					return filepath.SkipDir
				}
			}
			return nil
		})
	}
	return out
}

func requireNoTemps(t *testing.T, dirs ...string) {
	t.Helper()
	if tmps := tempsUnder(dirs...); len(tmps) > 0 {
		t.Fatalf("temp dirs left behind: %v", tmps)
	}
}

// newRemote is a remote repository with a main branch of n generated files.
func newRemote(t *testing.T, n int, seed int64) (*gittest.Repo, string) {
	t.Helper()
	repo := gittest.NewRepo(t)
	return repo, repo.Commit(t, "main", "first", gittest.Generate(n, seed))
}

// forcePush replaces main with an unrelated commit and lets the remote
// forget the old history, as a force-push followed by the host's gc would.
func forcePush(t *testing.T, repo *gittest.Repo, n int, seed int64) string {
	t.Helper()
	c := repo.Commit(t, "rewrite", "rewritten history", gittest.Generate(n, seed))
	gittest.Git(t, repo.Dir, "update-ref", "refs/heads/main", c)
	gittest.Git(t, repo.Dir, "update-ref", "-d", "refs/heads/rewrite")
	gittest.Git(t, repo.Dir, "reset", "-q", "--hard")
	gittest.Git(t, repo.Dir, "reflog", "expire", "--expire=now", "--all")
	gittest.Git(t, repo.Dir, "gc", "-q", "--prune=now")
	return c
}

// requireTree fails unless dir holds exactly rev's tree.
func requireTree(t *testing.T, want gittest.Tree, dir string) {
	t.Helper()
	if d := gittest.Diff(want, gittest.ReadDir(t, dir), 10); len(d) > 0 {
		t.Fatalf("%s differs from git archive:\n%v", dir, d)
	}
}

// countLines counts the stderr lines of results that contain s.
func countLines(rs []result, s string) int {
	n := 0
	for _, r := range rs {
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.Contains(l, s) {
				n++
			}
		}
	}
	return n
}

func uploadPackRuns(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run\n")
}

func waitForFile(t *testing.T, path string, p *cliProc) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if p != nil && !p.running() {
			t.Fatalf("gitfs exited before %s appeared: %+v", path, p.res)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishedSnapshots lists the published snapshots under root.
func publishedSnapshots(t *testing.T, root string) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	var out []string
	for _, e := range entries {
		if len(e.Name()) == 40 && e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// isOneErrorLine reports whether stderr is a single line starting "gitfs ".
func isOneErrorLine(stderr string) bool {
	s := strings.TrimSuffix(stderr, "\n")
	return strings.HasPrefix(s, "gitfs ") && !strings.Contains(s, "\n")
}
