//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// bench is one tree's setting: its source repository, a chain of
// successive commits (each changing about 1% of the files of the one
// before, the first ten of a --repo's first-parent history), a gitfs root
// with the repository mirrored as "demo" and a daemon serving it, and a
// persistent native clone at the chain's first commit.
type bench struct {
	bin, dir, label string
	files, runs     int
	src             string   // the repository the mirror was made from
	chain           []string // successive commits, oldest first
	tags            bool     // t0, t1, ... name chain[0], chain[1], ...
	root, mnt       string
	serveFlags      []string // given to every daemon the bench starts
	daemon          *exec.Cmd
	mirror          string
	native          string // persistent clone, checked out at chain[0]
	n               int    // names made so far (nextName)
}

// chainLen is how many successive commits a bench makes (the disk
// scenario's ten).
const chainLen = 10

func newBench(bin, dir string, files int, repo string, runs int, serveFlags []string) (*bench, error) {
	b := &bench{bin: bin, dir: dir, runs: runs, serveFlags: serveFlags}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := b.source(files, repo); err != nil {
		return nil, err
	}
	if len(serveFlags) > 0 {
		b.label += " (serve " + strings.Join(serveFlags, " ") + ")"
	}
	if runs > len(b.chain)-1 {
		return nil, fmt.Errorf("--runs %d: the new-commit job needs one commit more than runs, and there are %d", runs, len(b.chain))
	}
	b.root = filepath.Join(dir, "root")
	b.mnt = filepath.Join(dir, "mnt")
	if _, err := b.gitfs("repo", "add", "demo", b.src); err != nil {
		return nil, err
	}
	b.mirror = filepath.Join(b.root, "mirrors", "demo.git")
	if err := b.startDaemon(); err != nil {
		b.close()
		return nil, err
	}
	running = b
	b.native = filepath.Join(dir, "native")
	if err := sh(dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", b.mirror, b.native, b.native, b.chain[0])); err != nil {
		return nil, err
	}
	out, err := exec.Command("sh", "-c", "git -C "+b.native+" ls-files | wc -l").Output()
	if err == nil {
		b.files, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	return b, nil
}

// tb is the part of testing.TB that internal/gittest needs, failing the
// whole run.
type tb struct{ dir string }

func (t *tb) Helper()                           {}
func (t *tb) Fatalf(format string, args ...any) { fail(fmt.Sprintf(format, args...)) }
func (t *tb) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "t")
	if err != nil {
		fail(err.Error())
	}
	return d
}

// source makes (or takes) the repository and its chain of commits.
func (b *bench) source(files int, repo string) error {
	if repo != "" {
		out, err := exec.Command("git", "--git-dir", repo, "rev-list", "--first-parent", "-n", strconv.Itoa(chainLen), "HEAD").Output()
		if err != nil {
			return fmt.Errorf("--repo %s: %w", repo, err)
		}
		b.chain = strings.Fields(string(out))
		for i, j := 0, len(b.chain)-1; i < j; i, j = i+1, j-1 {
			b.chain[i], b.chain[j] = b.chain[j], b.chain[i]
		}
		b.src, b.label = repo, filepath.Base(strings.TrimSuffix(repo, "/"))
		return nil
	}
	logf("generating a tree of %d files and %d successive commits", files, chainLen)
	t := &tb{dir: b.dir}
	r := gittest.NewRepo(t)
	tree := gittest.Generate(files, 42)
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < chainLen; i++ {
		if i > 0 {
			tree = changeSome(tree, rng)
		}
		c := r.Commit(t, "main", fmt.Sprintf("c%d", i), tree)
		gittest.Git(t, r.Dir, "tag", fmt.Sprintf("t%d", i), c)
		b.chain = append(b.chain, c)
	}
	b.src, b.label, b.tags = r.Dir, fmt.Sprintf("generated %d", files), true
	return nil
}

// changeSome returns files with about 1% of them (at least one) edited.
func changeSome(files []gittest.File, rng *rand.Rand) []gittest.File {
	out := append([]gittest.File(nil), files...)
	for k := 0; k < max(1, len(out)/100); k++ {
		i := rng.Intn(len(out))
		f := out[i]
		f.Content = append([]byte(fmt.Sprintf("edit %d\n", rng.Int63())), f.Content...)
		out[i] = f
	}
	return out
}

func (b *bench) gitfs(args ...string) (string, error) {
	cmd := exec.Command(b.bin, append([]string{"--root", b.root, "-q"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("gitfs %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

func (b *bench) startDaemon() error {
	args := append([]string{"--root", b.root, "--log-level", "info", "serve", "--mountpoint", b.mnt}, b.serveFlags...)
	cmd := exec.Command(b.bin, args...)
	logFile, err := os.Create(filepath.Join(b.dir, "daemon.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	b.daemon = cmd
	for i := 0; i < 600; i++ {
		if _, err := b.gitfs("ws", "list"); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("gitfs serve did not come up (see %s)", logFile.Name())
}

func (b *bench) close() {
	if b.daemon != nil {
		b.daemon.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { b.daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.daemon.Process.Kill()
			<-done
			// A killed daemon leaves its mount, disconnected: detach it.
			if exec.Command("fusermount3", "-u", "-z", b.mnt).Run() != nil {
				exec.Command("umount", "-l", b.mnt).Run()
			}
		}
		b.daemon = nil
	}
}

// nextName is a fresh name for a workspace or directory.
func (b *bench) nextName(prefix string) string {
	b.n++
	return fmt.Sprintf("%s%d", prefix, b.n)
}

// wsCreate creates workspace name at commit and returns its path.
func (b *bench) wsCreate(name, commit string) (string, error) {
	return b.gitfs("ws", "create", name, "--repo", "demo", "--rev", commit)
}

// peakRSS is the daemon's peak resident set since the last resetPeak, in
// MiB (VmHWM).
func (b *bench) peakRSS() float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.daemon.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(st), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// resetPeak starts a new peak RSS measurement (clear_refs 5).
func (b *bench) resetPeak() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", b.daemon.Process.Pid), []byte("5"), 0)
}

// requests is how many FUSE requests the daemon answered, by operation.
func (b *bench) requests() map[string]int64 {
	out, err := b.gitfs("stats", "--json")
	if err != nil {
		return nil
	}
	var st struct {
		Metrics []struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
			Value  float64           `json:"value"`
		} `json:"metrics"`
	}
	json.Unmarshal([]byte(out), &st)
	m := map[string]int64{}
	for _, x := range st.Metrics {
		if x.Name == "gitfs_fuse_request_duration_seconds" {
			m[x.Labels["op"]] = int64(x.Value)
		}
	}
	return m
}

// storedBlobs counts the blob store's files.
func (b *bench) storedBlobs() int {
	n := 0
	dirs, _ := filepath.Glob(filepath.Join(b.root, "blobs", "[0-9a-f][0-9a-f]"))
	for _, d := range dirs {
		es, _ := os.ReadDir(d)
		n += len(es)
	}
	return n
}

// distinctBlobs counts commit's distinct blobs.
func (b *bench) distinctBlobs(commit string) int {
	out, err := exec.Command("git", "--git-dir", b.mirror, "ls-tree", "-r", commit).Output()
	if err != nil {
		return 0
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == "blob" {
			seen[f[2]] = true
		}
	}
	return len(seen)
}

// awaitFill waits (up to 10 minutes) until the store holds at least n
// blobs: the daemon fills each leased snapshot in the background.
func (b *bench) awaitFill(n int) {
	deadline := time.Now().Add(10 * time.Minute)
	for b.storedBlobs() < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
}

// awaitQuiet waits (up to 10 minutes) until the blob store stops growing
// for 3 s: the daemon's background fills are done.
func (b *bench) awaitQuiet() {
	deadline := time.Now().Add(10 * time.Minute)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		if n := b.storedBlobs(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 3*time.Second {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// emptyStore moves the blob store aside (deleted at the end: mass
// deletions slow file creation on ext4 for minutes, which would skew what
// follows), as a commit never seen finds it.
func (b *bench) emptyStore() error {
	blobs := filepath.Join(b.root, "blobs")
	if err := os.Rename(blobs, filepath.Join(b.dir, b.nextName("blobs-aside-"))); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(blobs, "tmp"), 0o700)
}

// pageCacheMiB is the page cache's size (Cached in /proc/meminfo).
func pageCacheMiB() float64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Cached:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// dropCaches empties the page cache if this process may (root); it
// reports whether it did.
func dropCaches() bool {
	exec.Command("sync").Run()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200) == nil
}

// sh runs script in dir, failing with its output.
func sh(dir, script string) error {
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", script, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// timed runs script in dir and returns its wall time in seconds.
func timed(dir, script string) float64 {
	start := time.Now()
	if err := sh(dir, script); err != nil {
		fail(err.Error())
	}
	return time.Since(start).Seconds()
}

// readTree is the full read every scenario makes of a tree: tar of
// everything but .git (a workspace's holds its commit's pinned packs; a
// --shared clone's borrows the mirror's).
const readTree = "tar --exclude=./.git -cf - . | wc -c >/dev/null"

// duKiB is the disk use of paths, each inode counted once.
func duKiB(paths ...string) float64 {
	out, err := exec.Command("du", append([]string{"-skc"}, paths...)...).Output()
	if err != nil {
		return 0
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	kb, _ := strconv.ParseFloat(f[0], 64)
	return kb
}
