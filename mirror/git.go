package mirror

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// minGit is the oldest git whose merge-tree has --write-tree.
var minGit = [2]int{2, 38}

// CheckGit fails with a clear message when git is missing or too old.
func CheckGit() error {
	out, err := exec.Command("git", "--version").Output()
	if err != nil {
		return fmt.Errorf("git not found on PATH: install git >= %d.%d", minGit[0], minGit[1])
	}
	return checkGitVersion(string(out))
}

var gitVersionRE = regexp.MustCompile(`^git version (\d+)\.(\d+)`)

// checkGitVersion checks the output of `git --version`.
func checkGitVersion(out string) error {
	out = strings.TrimSpace(out)
	m := gitVersionRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("cannot parse %q: need git >= %d.%d", out, minGit[0], minGit[1])
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < minGit[0] || (major == minGit[0] && minor < minGit[1]) {
		return fmt.Errorf("%s is too old: gitfs needs git >= %d.%d (for merge-tree --write-tree)",
			out, minGit[0], minGit[1])
	}
	return nil
}

// repoEnv names the variables that point git at a repository, an index or
// object directories. Inherited from a caller (a git hook, a shell inside a
// repository), they would make git work on that repository instead of the
// mirror, so they are dropped from every git child's environment.
var repoEnv = map[string]bool{
	"GIT_DIR": true, "GIT_WORK_TREE": true, "GIT_INDEX_FILE": true, "GIT_COMMON_DIR": true,
	"GIT_OBJECT_DIRECTORY": true, "GIT_ALTERNATE_OBJECT_DIRECTORIES": true, "GIT_NAMESPACE": true,
	"GIT_PREFIX": true, "GIT_QUARANTINE_PATH": true, "GIT_CEILING_DIRECTORIES": true,
	"GIT_DISCOVERY_ACROSS_FILESYSTEM": true,
}

func gitEnv(dir string, extra []string) []string {
	env := make([]string, 0, len(os.Environ())+6)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !repoEnv[k] {
			env = append(env, kv)
		}
	}
	env = append(env, "GIT_TERMINAL_PROMPT=0", "LC_ALL=C")
	if dir != "" {
		// Name the repository explicitly: a mirror too broken for git to
		// recognise must fail, not make git search the parent directories
		// and work on whatever repository encloses the root.
		env = append(env, "GIT_DIR="+dir)
	}
	return append(env, extra...)
}

// gitCmd runs git in its own process group, so that cancelling ctx kills
// git and every helper it started (remote helpers, upload-pack, ssh).
type gitCmd struct {
	dir   string
	args  []string
	stdin []byte
	env   []string
	// progress, if set, also gets git's stderr as git writes it (its
	// progress display); the error still carries the cause.
	progress io.Writer
}

// run executes the command and returns its stdout. On failure the error
// carries the last lines of git's stderr, which say what went wrong.
func (g gitCmd) run(ctx context.Context) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", g.args...)
	cmd.Dir = g.dir
	cmd.Env = gitEnv(g.dir, g.env)
	// Its own process group, so that cancelling kills its helpers too; and
	// on Linux it dies with gitfs (git_linux.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if dieWithParent(cmd.SysProcAttr) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	cmd.Cancel = func() error {
		// Negative pid: the whole process group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	if g.stdin != nil {
		cmd.Stdin = bytes.NewReader(g.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if g.progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, g.progress)
	}
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("git %s: %w", g.args[0], ctx.Err())
		}
		msg := gitCause(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.Bytes(), &GitError{Args: g.args, Stderr: msg, Err: err}
	}
	return stdout.Bytes(), nil
}

// GitError is a failed git invocation with what git said about it.
type GitError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *GitError) Error() string {
	verb := ""
	for i := 0; i < len(e.Args); i++ {
		if e.Args[i] == "-c" || e.Args[i] == "-C" {
			i++
			continue
		}
		verb = e.Args[i]
		break
	}
	return fmt.Sprintf("git %s: %s", verb, e.Stderr)
}

func (e *GitError) Unwrap() error { return e.Err }

// gitCause picks from git's stderr the lines that say why it failed:
// every "fatal:" and "error:" line and what the remote said ("remote:"),
// plus the safe.directory command git suggests for dubious ownership. Only
// the last lines would often keep boilerplate and drop the cause:
//
//	fatal: '/x' does not appear to be a git repository
//	fatal: Could not read from remote repository.
//
//	Please make sure you have the correct access rights
//	and the repository exists.
//
// With no such line, the last three lines are the message. At most
// maxCauseLines lines are kept, the first ones: git says the cause first.
func gitCause(stderr string) string {
	var all, causes []string
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "hint:") {
			continue
		}
		all = append(all, l)
		keep := strings.HasPrefix(l, "fatal:") || strings.HasPrefix(l, "error:") ||
			(strings.HasPrefix(l, "remote:") && strings.TrimSpace(strings.TrimPrefix(l, "remote:")) != "") ||
			strings.HasPrefix(l, "git config --global --add safe.directory")
		if keep && !seen[l] && len(causes) < maxCauseLines {
			seen[l] = true
			causes = append(causes, l)
		}
	}
	if len(causes) == 0 {
		if len(all) > 3 {
			all = all[len(all)-3:]
		}
		causes = all
	}
	return strings.Join(causes, "; ")
}

// maxCauseLines bounds how much of git's stderr an error carries.
const maxCauseLines = 6
