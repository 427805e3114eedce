// Package integration runs the built gitfs binary as a user would, against
// real git repositories and real FUSE mounts.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitfsBin is the binary built once for the whole package by TestMain.
var gitfsBin string

func TestMain(m *testing.M) {
	if code, ok := runHelper(); ok {
		os.Exit(code)
	}
	dir, err := os.MkdirTemp("", "gitfs-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Other users run the binary too (the security tests attack a root
	// daemon as uid 65534).
	if err := os.Chmod(dir, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gitfsBin = filepath.Join(dir, "gitfs")
	args := []string{"build", "-o", gitfsBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/gitfs")...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building gitfs:", err)
		os.Exit(1)
	}
	// A -race binary sleeps a second at exit by default; every gitfs run
	// in these tests would pay it.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one gitfs invocation did.
type result struct {
	stdout, stderr string
	code           int
}

// gitfs runs the binary with --root root and returns what it did; it fails
// the test only if the binary could not be run at all.
func gitfs(t testing.TB, root string, args ...string) result {
	t.Helper()
	return gitfsCtx(t, context.Background(), root, args...)
}

func gitfsCtx(t testing.TB, ctx context.Context, root string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gitfsBin, append([]string{"--root", root}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run gitfs %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// mustGitfs runs gitfs and fails the test unless it exits 0; it returns stdout.
func mustGitfs(t testing.TB, root string, args ...string) string {
	t.Helper()
	r := gitfs(t, root, args...)
	if r.code != 0 {
		t.Fatalf("gitfs %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}
