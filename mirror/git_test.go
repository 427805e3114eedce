package mirror

import (
	"context"
	"errors"
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

func TestCheckGitVersion(t *testing.T) {
	tests := []struct {
		out string
		ok  bool
	}{
		{"git version 2.39.5\n", true},
		{"git version 2.38.0", true},
		{"git version 2.45.1.windows.1", true},
		{"git version 2.39.3 (Apple Git-145)", true},
		{"git version 3.0.0", true},
		{"git version 2.37.7", false},
		{"git version 1.9.9", false},
		{"hub version 2.14.2", false},
		{"", false},
	}
	for _, tc := range tests {
		err := checkGitVersion(tc.out)
		if (err == nil) != tc.ok {
			t.Errorf("checkGitVersion(%q) = %v, want ok=%v", tc.out, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "2.38") {
			t.Errorf("error %q does not say which version is needed", err)
		}
	}
	if err := CheckGit(); err != nil {
		t.Fatalf("this machine's git: %v", err)
	}
}

// TestInheritedGitDirIgnored: a GIT_DIR in gitfs's environment (a git hook,
// a shell in a repository) must not make git work on another repository.
func TestInheritedGitDirIgnored(t *testing.T) {
	f := newFixture(t)
	other := gittest.NewRepo(t)
	otherCommit := other.Commit(t, "main", "other", gittest.Generate(2, 9))
	t.Setenv("GIT_DIR", filepath.Join(other.Dir, ".git"))
	m, err := f.set.Get(context.Background(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Resolve(context.Background(), "main")
	if err != nil || got != f.commit {
		t.Fatalf("Resolve(main) = %s, %v; want the mirror's %s (the other repository has %s)", got, err, f.commit, otherCommit)
	}
}

// procGone reports whether pid has exited (gone or a zombie).
func procGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func waitGone(t *testing.T, pid int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !procGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still running", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// parentPid returns the parent pid of pid.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	fields := strings.Fields(string(b)[strings.LastIndex(string(b), ")")+1:])
	ppid, err := strconv.Atoi(fields[1])
	must(t, err)
	return ppid
}

// hangingGit runs a git alias that records its shell's pid in pidFile and
// sleeps: git -> sh -> sleep, all in git's process group.
func hangingGit(pidFile string) gitCmd {
	return gitCmd{args: []string{"-c", "alias.hang=!echo $$ > '" + pidFile + "'; exec sleep 60", "hang"}}
}

func waitPidFile(t *testing.T, pidFile string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			must(t, err)
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("git child never started")
	return 0
}

// TestCancelKillsProcessGroup: cancelling a git command kills git
// and everything it started.
func TestCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := hangingGit(pidFile).run(ctx)
		done <- err
	}()
	sleepPid := waitPidFile(t, pidFile)
	t.Cleanup(func() { syscall.Kill(sleepPid, syscall.SIGKILL) })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	waitGone(t, sleepPid, "git's grandchild")
}

const hangHelperEnv = "GITFS_MIRROR_TEST_HANG"

// TestHelperHangingGit is not a test: TestGitDiesWithGitfs
// runs it in a child process that starts a hanging git and waits.
func TestHelperHangingGit(t *testing.T) {
	pidFile := os.Getenv(hangHelperEnv)
	if pidFile == "" {
		t.Skip("helper process only")
	}
	hangingGit(pidFile).run(context.Background())
	os.Exit(0)
}

// TestGitDiesWithGitfs: kill -9 of gitfs kills its git child, so no
// git goes on writing into a mirror whose lock the kernel just released.
func TestGitDiesWithGitfs(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHangingGit$")
	cmd.Env = append(os.Environ(), hangHelperEnv+"="+pidFile)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sleepPid := waitPidFile(t, pidFile)
	t.Cleanup(func() { syscall.Kill(sleepPid, syscall.SIGKILL) })
	gitPid := parentPid(t, sleepPid)
	if gitPid == cmd.Process.Pid || parentPid(t, gitPid) != cmd.Process.Pid {
		t.Fatalf("unexpected process tree: helper %d, git %d, sleep %d", cmd.Process.Pid, gitPid, sleepPid)
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	waitGone(t, gitPid, "git child of a killed gitfs")
}

func TestGitCause(t *testing.T) {
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{
			name: "not a repository",
			stderr: `fatal: '/no/such' does not appear to be a git repository
fatal: Could not read from remote repository.

Please make sure you have the correct access rights
and the repository exists.
`,
			want: "fatal: '/no/such' does not appear to be a git repository; fatal: Could not read from remote repository.",
		},
		{
			name: "dubious ownership",
			stderr: `fatal: detected dubious ownership in repository at '/srv/repo'
To add an exception for this directory, call:

	git config --global --add safe.directory /srv/repo
fatal: Could not read from remote repository.

Please make sure you have the correct access rights
and the repository exists.
`,
			want: "fatal: detected dubious ownership in repository at '/srv/repo'; git config --global --add safe.directory /srv/repo; fatal: Could not read from remote repository.",
		},
		{
			name:   "what the remote said",
			stderr: "remote: Repository not found.\nfatal: repository 'https://example.com/x.git/' not found\n",
			want:   "remote: Repository not found.; fatal: repository 'https://example.com/x.git/' not found",
		},
		{
			name:   "hints dropped, no fatal line: the last three",
			stderr: "hint: try this\none\ntwo\nthree\nfour\n",
			want:   "two; three; four",
		},
		{
			name:   "repeated lines once",
			stderr: "error: cannot lock ref 'refs/heads/x'\nerror: cannot lock ref 'refs/heads/x'\n",
			want:   "error: cannot lock ref 'refs/heads/x'",
		},
		{name: "empty", stderr: "\n\n", want: ""},
	} {
		if got := gitCause(tc.stderr); got != tc.want {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, got, tc.want)
		}
	}
}
