package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
)

// Attacks of an unprivileged local user (uid 65534) on a root daemon. Each
// test is one hole found in the field, tried the way the user tried it.

const nobodyID = 65534

// sharedHost is a root daemon whose root, mount and socket are where any
// local user can reach them, as on a shared CI host: a base directory 0711
// outside the tests' private temp dirs.
type sharedHost struct {
	base, root, mnt string
	repo            *gittest.Repo
	d               *daemonProc
}

func newSharedHost(t *testing.T) *sharedHost {
	t.Helper()
	requireRoot(t)
	base, err := os.MkdirTemp("", "gitfs-shared-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last: after the daemon is stopped.
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	h := &sharedHost{base: base, root: filepath.Join(base, "root"), mnt: filepath.Join(base, "mnt")}
	h.repo = gittest.NewRepo(t)
	h.repo.Commit(t, "main", "c1", append(gittest.Generate(60, 3),
		gittest.File{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: "100755"}))
	gittest.Git(t, h.repo.Dir, "branch", "feature")
	mustGitfs(t, h.root, "repo", "add", "private", h.repo.Dir)
	mustGitfs(t, h.root, "repo", "add", "shared", h.repo.Dir, "--public")
	// The daemon inherits umask 0, the worst an init system could give it.
	old := syscall.Umask(0)
	h.d = serve(t, h.root, h.mnt)
	syscall.Umask(old)
	return h
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("these tests attack a root daemon as another user and need root; CI=true: they may not skip")
	}
	t.Skip("needs root: attacks a root daemon as uid 65534")
}

// asNobody runs gitfs with the host's root as uid/gid 65534 and no
// supplementary groups (as setpriv --reuid=65534 --regid=65534
// --clear-groups would).
func (h *sharedHost) asNobody(t *testing.T, args ...string) result {
	t.Helper()
	return runAs(t, nobodyID, nobodyID, gitfsBin, append([]string{"--root", h.root}, args...)...)
}

func runAs(t *testing.T, uid, gid uint32, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "HOME=/nonexistent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s as %d: %v", name, uid, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// shAs runs a shell command as uid/gid.
func shAs(t *testing.T, uid uint32, script string) result {
	t.Helper()
	return runAs(t, uid, uid, "/bin/sh", "-c", script)
}

// requestAs sends one raw HTTP request to the daemon over a connection
// made by a thread running as uid/gid, so that the daemon sees that user in
// SO_PEERCRED: curl as that user, without needing curl.
func (h *sharedHost) requestAs(t *testing.T, uid, gid uint32, method, path, body string) (int, string) {
	t.Helper()
	conn := dialAs(t, filepath.Join(h.root, "gitfs.sock"), uid, gid)
	used := false
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, fmt.Errorf("one connection per request")
			}
			used = true
			return conn, nil
		},
	}}
	req, err := http.NewRequest(method, "http://gitfs"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dialAs connects to a unix socket from a thread whose credentials are
// uid/gid (the kernel records the connecting thread's), then restores the
// thread's.
func dialAs(t *testing.T, sock string, uid, gid uint32) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	orig, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	origGroups := make([]uint32, len(orig))
	for i, g := range orig {
		origGroups[i] = uint32(g)
	}
	go func() {
		runtime.LockOSThread()
		// Raw syscalls change this thread only (Go's syscall.Setresuid
		// would change every thread of the test process).
		setgroups := func(gids []uint32) syscall.Errno {
			var p uintptr
			if len(gids) > 0 {
				p = uintptr(unsafe.Pointer(&gids[0]))
			}
			_, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), p, 0)
			return e
		}
		if e := setgroups(nil); e != 0 {
			ch <- res{err: e}
			return
		}
		if _, _, e := unix.RawSyscall(sysSetresgid, uintptr(gid), uintptr(gid), 0); e != 0 {
			ch <- res{err: e}
			return
		}
		if _, _, e := unix.RawSyscall(sysSetresuid, uintptr(uid), uintptr(uid), 0); e != 0 {
			ch <- res{err: e}
			return
		}
		c, err := net.Dial("unix", sock)
		_, _, e1 := unix.RawSyscall(sysSetresuid, 0, 0, 0)
		_, _, e2 := unix.RawSyscall(sysSetresgid, 0, 0, 0)
		if e1 == 0 && e2 == 0 && setgroups(origGroups) == 0 {
			runtime.UnlockOSThread()
		} // else: the thread dies with this goroutine
		ch <- res{c, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("connect to %s as uid %d: %v", sock, uid, r.err)
	}
	return r.c
}

// TestSecurityOnDisk: the root and everything below it are out of other
// users' reach, so there is nowhere for them to lay a link for the daemon.
func TestSecurityOnDisk(t *testing.T) {
	h := newSharedHost(t)
	mustGitfs(t, h.root, "ws", "create", "rootws", "--repo", "private", "--rev", "main")
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("nobody's ws create: %d %s", r.code, r.stderr)
	}
	st, err := os.Stat(h.root)
	if err != nil || st.Mode().Perm() != 0o711 {
		t.Errorf("root mode %v (%v), want 0711", st.Mode(), err)
	}
	for _, sub := range []string{"mirrors", "snapshots", "workspaces", "locks", "blobs", "workspaces/mine", "workspaces/rootws"} {
		st, err := os.Stat(filepath.Join(h.root, sub))
		if err != nil || st.Mode().Perm() != 0o700 || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: %v (%v), want 0700 root", sub, st.Mode(), err)
		}
	}
	for _, p := range []string{"workspaces/mine/upper", "workspaces", "mirrors/private.git"} {
		if r := shAs(t, nobodyID, "ls "+filepath.Join(h.root, p)); r.code == 0 {
			t.Errorf("nobody listed ROOT/%s: %s", p, r.stdout)
		}
	}
	if b, err := os.ReadFile("/proc/mounts"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 3 && f[1] == h.mnt && (!strings.Contains(f[3], "nosuid") || !strings.Contains(f[3], "nodev")) {
				t.Errorf("mount options %s: want nosuid and nodev (a user's setuid file or device node must give nothing)", f[3])
			}
		}
	}
	sock, err := os.Stat(filepath.Join(h.root, "gitfs.sock"))
	if err != nil || sock.Mode().Perm() != 0o666 {
		t.Errorf("socket mode %v (%v), want 0666 (authorization is per request)", sock.Mode(), err)
	}
}

// TestSecuritySymlinkInUpper: a link laid in the upper layer (by someone
// who could reach it) is never followed by chmod through the mount.
func TestSecuritySymlinkInUpper(t *testing.T) {
	h := newSharedHost(t)
	secret := filepath.Join(h.base, "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("ws create: %d %s", r.code, r.stderr)
	}
	ws := filepath.Join(h.mnt, "mine")
	// The stat last: the kernel then holds f's attributes (the user owns
	// it) and lets the chmod below through to the daemon.
	if r := shAs(t, nobodyID, "echo x > "+ws+"/f && chmod 0644 "+ws+"/f && stat "+ws+"/f"); r.code != 0 {
		t.Fatalf("write f: %s", r.stderr)
	}
	// Swap the upper file for a link to the secret, as the user did when
	// the directory was theirs.
	upper := filepath.Join(h.root, "workspaces", "mine", "upper", "f")
	if err := os.Remove(upper); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, upper); err != nil {
		t.Fatal(err)
	}
	shAs(t, nobodyID, "chmod 0666 "+ws+"/f")
	shAs(t, nobodyID, "touch "+ws+"/f; : > "+ws+"/f")
	st, err := os.Stat(secret)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("chmod through the mount followed a link in the upper layer: secret is now %v", st.Mode())
	}
	if b, _ := os.ReadFile(secret); string(b) != "root only" {
		t.Errorf("secret changed through a link in the upper layer: %q", b)
	}
}

// TestSecuritySocketAuthorization: every request on another user's
// workspace is refused, and listing shows a user only their own.
func TestSecuritySocketAuthorization(t *testing.T) {
	h := newSharedHost(t)
	rootWs := wsCreate(t, h.root, "rootws", "--repo", "shared", "--rev", "main")
	if err := os.WriteFile(filepath.Join(rootWs, "root-change"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("ws create: %d %s", r.code, r.stderr)
	}
	list := h.asNobody(t, "ws", "list")
	if list.code != 0 || strings.Contains(list.stdout, "rootws") || !strings.Contains(list.stdout, "mine") {
		t.Errorf("nobody's ws list: %d %q %s; want only its own workspace", list.code, list.stdout, list.stderr)
	}
	if all := mustGitfs(t, h.root, "ws", "list"); !strings.Contains(all, "rootws") || !strings.Contains(all, "mine") {
		t.Errorf("root's ws list %q: want every workspace", all)
	}
	rootOnly := filepath.Join(h.base, "rootonly")
	if err := os.Mkdir(rootOnly, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"ws", "status", "rootws"},
		{"ws", "update", "rootws", "--rev", "feature"},
		{"ws", "export", "rootws", filepath.Join(h.base, "stolen")},
		{"ws", "rm", "rootws"},
	} {
		r := h.asNobody(t, args...)
		if r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("nobody: gitfs %s: exit %d, %q; want refused with permission denied", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(h.base, "stolen")); err == nil {
		t.Error("export of root's workspace by nobody wrote something")
	}
	if _, err := os.Stat(filepath.Join(rootWs, "root-change")); err != nil {
		t.Errorf("root's workspace lost its change after nobody's requests: %v", err)
	}
	// Export of its own workspace into a directory it cannot write.
	r := h.asNobody(t, "ws", "export", "mine", filepath.Join(rootOnly, "x"))
	if r.code == 0 {
		t.Error("nobody exported into a root-only 0700 directory")
	}
	if names, _ := os.ReadDir(rootOnly); len(names) != 0 {
		t.Errorf("export as nobody left %v in a root-only directory", names)
	}
	// The same with a path instead of a descriptor, as curl would send it.
	code, body := h.requestAs(t, nobodyID, nobodyID, "POST", "/v1/workspaces/mine/export",
		fmt.Sprintf(`{"dir":%q}`, filepath.Join(rootOnly, "y")))
	if code == http.StatusOK {
		t.Errorf("raw export into a root-only directory: %d %s", code, body)
	}
	if names, _ := os.ReadDir(rootOnly); len(names) != 0 {
		t.Errorf("raw export as nobody left %v in a root-only directory", names)
	}
	code, body = h.requestAs(t, nobodyID, nobodyID, "DELETE", "/v1/workspaces/rootws", "")
	if code != http.StatusForbidden {
		t.Errorf("raw DELETE of root's workspace: %d %s, want 403", code, body)
	}
	if _, err := os.Stat(rootWs); err != nil {
		t.Errorf("root's workspace is gone: %v", err)
	}
}

// TestSecurityPrivateRepository: a repository is its owner's unless
// shared: no workspace of it and no browse path for other users.
func TestSecurityPrivateRepository(t *testing.T) {
	h := newSharedHost(t)
	r := h.asNobody(t, "ws", "create", "peek", "--repo", "private", "--rev", "main")
	if r.code == 0 || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("nobody created a workspace of a private repository: %d %s", r.code, r.stderr)
	}
	browse := filepath.Join(h.mnt, "@private", "heads", "main")
	if r := shAs(t, nobodyID, "cat "+browse+"/bin/run.sh"); r.code == 0 {
		t.Errorf("nobody read a private repository through the browse path: %q", r.stdout)
	}
	if r := shAs(t, nobodyID, "cat "+filepath.Join(h.mnt, "@shared", "heads", "main", "bin", "run.sh")); r.code != 0 {
		t.Errorf("nobody cannot read a public repository: %s", r.stderr)
	}
	// A private repository's workspace is private too.
	ws := wsCreate(t, h.root, "rootprivate", "--repo", "private", "--rev", "main")
	if r := shAs(t, nobodyID, "cat "+ws+"/bin/run.sh"); r.code == 0 {
		t.Errorf("nobody read a private repository's workspace")
	}
	// Shared with nobody's group, it may.
	mustGitfs(t, h.root, "repo", "access", "private", "--group", "65534")
	time.Sleep(1100 * time.Millisecond) // the kernel keeps @repo's mode for up to 1 s
	if r := shAs(t, nobodyID, "cat "+browse+"/bin/run.sh"); r.code != 0 {
		t.Errorf("nobody cannot read the repository once shared with its group: %s", r.stderr)
	}
	if r := h.asNobody(t, "ws", "create", "peek", "--repo", "private", "--rev", "main"); r.code != 0 {
		t.Errorf("nobody cannot create a workspace once shared with its group: %s", r.stderr)
	}
}

// TestSecurityExportIntoMount: an export into the daemon's own mount is
// refused instead of deadlocking the daemon.
func TestSecurityExportIntoMount(t *testing.T) {
	h := newSharedHost(t)
	wsCreate(t, h.root, "a", "--repo", "shared", "--rev", "main")
	b := wsCreate(t, h.root, "b", "--repo", "shared", "--rev", "main")
	done := make(chan result, 1)
	go func() { done <- gitfs(t, h.root, "ws", "export", "a", filepath.Join(b, "into")) }()
	select {
	case r := <-done:
		if r.code == 0 || !strings.Contains(r.stderr, "mount") {
			t.Errorf("export into the mount: exit %d %q; want refused, naming the mount", r.code, r.stderr)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("export into the mount hangs")
	}
	if _, err := os.ReadDir(b); err != nil {
		t.Errorf("mount unusable after the export: %v", err)
	}
	mustGitfs(t, h.root, "ws", "list")
}

// TestSecurityBadRequests: numbers are bounded, bodies strict, and a bad
// request is a 400, never a crash.
func TestSecurityBadRequests(t *testing.T) {
	h := newSharedHost(t)
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("ws create: %s", r.stderr)
	}
	out := filepath.Join(h.base, "out")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/workspaces/mine/export", fmt.Sprintf(`{"dir":%q,"workers":100000}`, out)},
		{"POST", "/v1/workspaces/mine/export", fmt.Sprintf(`{"dir":%q,"workers":-1}`, out)},
		{"POST", "/v1/workspaces/mine/export", `{"workers":2}`},
		{"POST", "/v1/workspaces/mine/export", `{"dir":"relative/dir"}`},
		{"POST", "/v1/workspaces/mine/export", `{"dir_fd":99999999,"name":"x"}`},
		{"POST", "/v1/workspaces/mine/export", `{"dir_fd":0,"name":"../x"}`},
		{"POST", "/v1/workspaces", `{"name":"-rf","repo":"shared","rev":"main"}`},
		{"POST", "/v1/workspaces", `{"name":"ok1","repo":"shared","rev":"main"} trailing`},
		{"POST", "/v1/workspaces", `{"name":"ok2","repo":"shared","rev":"main"}{"name":"ok3"}`},
		{"POST", "/v1/workspaces", `{"name":"ok4","repo":"-shared","rev":"main"}`},
		{"POST", "/v1/workspaces", `{"name":"ok5","repo":"shared","rev":"--output=/tmp/x"}`},
		{"POST", "/v1/workspaces/mine/update", `{"rev":"main","bogus":1}`},
		{"POST", "/v1/workspaces/mine/update", `{"rev":"` + strings.Repeat("a", 5000) + `"}`},
	} {
		code, body := h.requestAs(t, nobodyID, nobodyID, c.method, c.path, c.body)
		if code < 400 || code >= 500 {
			t.Errorf("%s %s %s: %d %s; want a 4xx", c.method, c.path, c.body, code, body)
		}
		var eb struct{ Error, Kind string }
		if json.Unmarshal([]byte(body), &eb) != nil || eb.Error == "" {
			t.Errorf("%s %s: body %q is not an error object", c.method, c.path, body)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused export wrote its target")
	}
	select {
	case <-h.d.done:
		t.Fatalf("daemon died: %s", h.d.stderr.String())
	default:
	}
	if r := h.asNobody(t, "ws", "list"); r.code != 0 || strings.Contains(r.stdout, "ok") {
		t.Errorf("after bad requests: %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// TestSecurityModesOfWhatTheDaemonWrites: no file the daemon writes (a
// fetch's refs, a merge's objects, an export) is writable by others,
// whatever umask it was started with.
func TestSecurityModesOfWhatTheDaemonWrites(t *testing.T) {
	h := newSharedHost(t)
	ws := wsCreate(t, h.root, "m", "--repo", "shared", "--rev", "feature", "--merge-into", "main")
	h.repo.Commit(t, "main", "c2", append(gittest.Generate(61, 3),
		gittest.File{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho hi\n"), Mode: "100755"}))
	mustGitfs(t, h.root, "ws", "update", "m", "--fetch")
	out := filepath.Join(t.TempDir(), "export")
	mustGitfs(t, h.root, "ws", "export", "m", out)
	_ = ws
	for _, dir := range []string{filepath.Join(h.root, "mirrors"), filepath.Join(h.root, "snapshots"), out} {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			fi, err := d.Info()
			if err == nil && fi.Mode().Perm()&0o022 != 0 {
				t.Errorf("%s is %v: writable by group or others", p, fi.Mode())
			}
			return nil
		})
	}
}

// TestSecuritySecondUser: a workspace of another user works for that user
// end to end, and is theirs.
func TestSecuritySecondUser(t *testing.T) {
	h := newSharedHost(t)
	mustGitfs(t, h.root, "repo", "access", "private", "--owner", "65534")
	r := h.asNobody(t, "ws", "create", "mine", "--repo", "private", "--rev", "main")
	if r.code != 0 {
		t.Fatalf("ws create as the repository's owner: %s", r.stderr)
	}
	ws := strings.TrimSpace(r.stdout)
	if r := shAs(t, nobodyID, "set -e; echo new > "+ws+"/new.txt; echo changed > "+ws+"/bin/run.sh; rm "+ws+"/f000001.txt; mkdir "+ws+"/d; ln -s new.txt "+ws+"/d/link"); r.code != 0 {
		t.Fatalf("work in the workspace: %s", r.stderr)
	}
	st := h.asNobody(t, "ws", "status", "mine")
	for _, want := range []string{"A  new.txt", "M  bin/run.sh", "D  f000001.txt", "A  d/link"} {
		if !strings.Contains(st.stdout, want) {
			t.Errorf("ws status lacks %q: %q %s", want, st.stdout, st.stderr)
		}
	}
	home := filepath.Join(h.base, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobodyID, nobodyID); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(home, "export")
	if r := h.asNobody(t, "ws", "export", "mine", out); r.code != 0 {
		t.Fatalf("export into its own directory: %s", r.stderr)
	}
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		fi, err := os.Lstat(p)
		if err == nil && (fi.Sys().(*syscall.Stat_t).Uid != nobodyID || fi.Sys().(*syscall.Stat_t).Gid != nobodyID) {
			t.Errorf("%s is owned by %d:%d, want the exporting user", p, fi.Sys().(*syscall.Stat_t).Uid, fi.Sys().(*syscall.Stat_t).Gid)
		}
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(out, "new.txt")); err != nil || string(b) != "new\n" {
		t.Errorf("export new.txt: %q %v", b, err)
	}
	// Another user (65533) reaches none of it: not on disk, not in the mount.
	for _, p := range []string{ws + "/new.txt", filepath.Join(h.root, "workspaces", "mine", "upper", "new.txt")} {
		if r := shAs(t, 65533, "cat "+p); r.code == 0 {
			t.Errorf("uid 65533 read %s", p)
		}
	}
	if r := h.asNobody(t, "ws", "rm", "mine"); r.code != 0 {
		t.Fatalf("ws rm: %s", r.stderr)
	}
	if _, err := os.Stat(ws); err == nil {
		t.Error("workspace still in the mount after rm")
	}
}

// TestSecurityOtherRepositorysCommit: the id of a commit of a repository
// the caller may not read opens nothing through one they may. Snapshots
// are kept by commit alone, and a published one used to resolve to itself
// in any repository: a workspace or browse path of a public repository at
// a private repository's commit showed its files, and the workspace's .git
// held the private mirror's packs.
func TestSecurityOtherRepositorysCommit(t *testing.T) {
	h := newSharedHost(t)
	secret := gittest.NewRepo(t)
	commit := secret.Commit(t, "main", "secret", []gittest.File{{Path: "secret.txt", Content: []byte("root only\n")}})
	mustGitfs(t, h.root, "repo", "add", "secret", secret.Dir)
	wsCreate(t, h.root, "rootsecret", "--repo", "secret", "--rev", "main") // publishes commit's snapshot
	if r := h.asNobody(t, "ws", "create", "steal", "--repo", "shared", "--rev", commit); r.code == 0 {
		t.Errorf("nobody created a workspace of shared at secret's commit %s", commit)
	}
	if r := shAs(t, nobodyID, "cat "+filepath.Join(h.mnt, "steal", "secret.txt")); r.code == 0 {
		t.Errorf("nobody read secret's file through its own workspace: %q", r.stdout)
	}
	if r := shAs(t, nobodyID, "cat "+filepath.Join(h.mnt, "@shared", "commits", commit, "secret.txt")); r.code == 0 {
		t.Errorf("nobody read secret's file through shared's browse path: %q", r.stdout)
	}
	if r := h.asNobody(t, "ws", "create", "mine", "--repo", "shared", "--rev", "main"); r.code != 0 {
		t.Fatalf("ws create: %d %s", r.code, r.stderr)
	}
	if r := h.asNobody(t, "ws", "update", "mine", "--rev", commit); r.code == 0 {
		t.Errorf("nobody moved its workspace of shared to secret's commit")
	}
	if r := shAs(t, nobodyID, "cat "+filepath.Join(h.mnt, "mine", "secret.txt")); r.code == 0 {
		t.Errorf("nobody read secret's file after ws update: %q", r.stdout)
	}
	// Its own repository's published commit still resolves without the mirror.
	if r := gitfs(t, h.root, "ws", "create", "again", "--repo", "secret", "--rev", commit); r.code != 0 {
		t.Errorf("root: ws create of secret at its own commit: %d %s", r.code, r.stderr)
	}
}

// TestSecuritySharedCommitOfPrivateFork: a commit that a public repository
// and a private one both hold (a private fork of a public project, or two
// repositories that committed the same tree) has one snapshot, built from
// whichever repository asked first. A workspace of the public repository at
// that commit must not get the private repository's packs in its .git: the
// snapshot's packs are the private mirror's, holding its every object.
func TestSecuritySharedCommitOfPrivateFork(t *testing.T) {
	h := newSharedHost(t)
	files := []gittest.File{{Path: "README", Content: []byte("public project\n")}}
	pub := gittest.NewRepo(t)
	commit := pub.Commit(t, "main", "upstream", files)
	fork := gittest.NewRepo(t)
	if c := fork.Commit(t, "main", "upstream", files); c != commit {
		t.Fatalf("the fork's upstream commit is %s, want %s", c, commit)
	}
	hidden := fork.Commit(t, "hidden", "secret work", []gittest.File{{Path: "secret.txt", Content: []byte("root only\n")}})
	mustGitfs(t, h.root, "repo", "add", "pub", pub.Dir, "--public")
	mustGitfs(t, h.root, "repo", "add", "fork", fork.Dir)
	// Root's workspace of the fork at the shared commit publishes its
	// snapshot, pinning the fork's packs (which hold the hidden commit).
	wsCreate(t, h.root, "rootfork", "--repo", "fork", "--rev", commit)
	r := h.asNobody(t, "ws", "create", "mine", "--repo", "pub", "--rev", "main")
	if r.code != 0 {
		t.Fatalf("ws create of the public repository: %d %s", r.code, r.stderr)
	}
	ws := strings.TrimSpace(r.stdout)
	if r := shAs(t, nobodyID, "cat "+ws+"/README"); r.code != 0 || r.stdout != "public project\n" {
		t.Fatalf("README of its own workspace: %d %q %s", r.code, r.stdout, r.stderr)
	}
	git := "HOME=/nonexistent git -C " + ws + " "
	if r := shAs(t, nobodyID, git+"cat-file -e "+commit); r.code != 0 {
		t.Fatalf("the workspace's .git lacks its own commit: %s", r.stderr)
	}
	if r := shAs(t, nobodyID, git+"cat-file -p "+hidden+":secret.txt"); r.code == 0 {
		t.Errorf("nobody read the private fork's hidden commit through its workspace of pub: %q", r.stdout)
	}
	if r := shAs(t, nobodyID, git+"status --porcelain"); r.code != 0 || r.stdout != "" {
		t.Errorf("git status in the workspace: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// ws update to the same commit by id rebuilds the git dir the same way.
	mustGitfs(t, h.root, "ws", "update", "mine", "--rev", commit)
	if r := shAs(t, nobodyID, git+"cat-file -p "+hidden+":secret.txt"); r.code == 0 {
		t.Errorf("nobody read the hidden commit after ws update: %q", r.stdout)
	}
	// A clone-like checkout of pub, made by root for a job that another
	// user runs, holds pub's objects only, linked or borrowed.
	co := filepath.Join(t.TempDir(), "co")
	mustGitfs(t, h.root, "checkout", "pub", commit, co, "--git")
	if out, err := exec.Command("git", "-C", co, "cat-file", "-p", hidden+":secret.txt").CombinedOutput(); err == nil {
		t.Errorf("gitfs checkout --git of pub holds the private fork's hidden commit: %q", out)
	}
	if out, err := exec.Command("git", "-C", co, "status", "--porcelain").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("git status in the checkout: %v %q", err, out)
	}
}

// TestSecurityMountpointRedirect: a root daemon refuses a mount point
// another user could point elsewhere: below a directory they own or may
// write, or through a symlink they own. It would mount (allow_other) over,
// or detach a dead mount from, whatever directory they chose.
func TestSecurityMountpointRedirect(t *testing.T) {
	requireRoot(t)
	requireFUSE(t)
	base, err := os.MkdirTemp("", "gitfs-mp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	dir := func(name string, mode os.FileMode, uid int) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(name, target string, uid int) string {
		t.Helper()
		p := filepath.Join(base, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	target := dir("target", 0o755, 0) // a directory of root's the attacker wants covered
	theirs := dir("theirs", 0o755, nobodyID)
	open := dir("open", 0o777, 0)
	for _, c := range []struct {
		name, mnt, says string
	}{
		{"their symlink", link("theirlink", target, nobodyID), "symlink of uid 65534"},
		{"in their directory", filepath.Join(theirs, "mnt"), "uid 65534"},
		{"in a directory anyone may write", filepath.Join(open, "mnt"), "writable by other users"},
		{"root's symlink in a directory anyone may write", link("open/link", target, 0), "writable by other users"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stderr, mounted := serveOnce(t, root, c.mnt, target)
			if mounted {
				t.Fatalf("gitfs serve mounted at %s", c.mnt)
			}
			if !strings.Contains(stderr, c.says) {
				t.Errorf("gitfs serve refused %s saying %q, want it to say %q", c.mnt, stderr, c.says)
			}
		})
	}
	// Root's own symlink in root's own directory is fine.
	if out, mounted := serveOnce(t, root, link("good", target, 0), target); !mounted {
		t.Errorf("serve through root's own link did not mount: %s", out)
	}
}

// serveOnce starts gitfs serve at mnt and reports its output and whether
// it mounted (at mnt or where mnt leads, target) before it exited; once
// mounted it is stopped and the mount removed.
func serveOnce(t *testing.T, root, mnt, target string) (string, bool) {
	t.Helper()
	cmd := exec.Command(gitfsBin, "--root", root, "serve", "--mountpoint", mnt)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			return out.String(), false
		default:
		}
		mounted := isMounted(target) || isMounted(mnt)
		if mounted || time.Now().After(deadline) {
			cmd.Process.Signal(syscall.SIGTERM)
			<-done
			forceUnmount(target)
			forceUnmount(mnt)
			if !mounted {
				t.Fatalf("gitfs serve at %s neither mounted nor exited: %s", mnt, out.String())
			}
			return out.String(), true
		}
	}
}

// TestSecurityConnectionLimit: one user cannot hold more than 128 control
// connections open at once (each costs the root daemon a descriptor and a
// goroutine, and an idle keep-alive connection is never closed); the one
// over the bound is answered 503 and closed, while root and other users
// are still served, and a closed connection frees its place.
func TestSecurityConnectionLimit(t *testing.T) {
	h := newSharedHost(t)
	sock := filepath.Join(h.root, "gitfs.sock")
	// status answers every user: a request that holds nothing.
	ask := func(c net.Conn) (int, string) {
		t.Helper()
		if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: gitfs\r\n\r\n"); err != nil {
			return 0, err.Error()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for i := 0; i < 128; i++ {
		c := dialAs(t, sock, nobodyID, nobodyID)
		held = append(held, c)
		// Answered, so accepted and counted; then idle, kept alive.
		if code, body := ask(c); code != http.StatusOK {
			t.Fatalf("connection %d of nobody: %d %s", i+1, code, body)
		}
	}
	// The daemon answers the one over the bound at once and closes it: a
	// request written after that close would fail with EPIPE, so read.
	over := dialAs(t, sock, nobodyID, nobodyID)
	defer over.Close()
	if resp, err := http.ReadResponse(bufio.NewReader(over), nil); err != nil {
		t.Errorf("nobody's 129th connection: %v, want 503 too many open connections", err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "too many open connections") {
			t.Errorf("nobody's 129th connection: %d %q, want 503 too many open connections", resp.StatusCode, b)
		}
	}
	other := dialAs(t, sock, 65533, 65533)
	defer other.Close()
	if code, body := ask(other); code != http.StatusOK {
		t.Errorf("another user while nobody holds 128: %d %s", code, body)
	}
	if r := gitfs(t, h.root, "ws", "list"); r.code != 0 {
		t.Errorf("root while nobody holds 128: %d %s", r.code, r.stderr)
	}
	held[0].Close()
	held = held[1:]
	// The daemon sees the close when it next reads that connection; a
	// new one is accepted once it has.
	for i := 0; ; i++ {
		c := dialAs(t, sock, nobodyID, nobodyID)
		code, _ := ask(c)
		if code == http.StatusOK {
			held = append(held, c)
			break
		}
		c.Close()
		if i == 1000 {
			t.Fatalf("a closed connection never gave its place back")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
