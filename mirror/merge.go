package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ConflictError lists the paths a merge could not combine.
type ConflictError struct {
	Base, Head string
	Paths      []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("merging %s into %s conflicts in %d path(s): %s", short(e.Head), short(e.Base), len(e.Paths), strings.Join(e.Paths, ", "))
}

// ConflictPaths lets callers report any conflict the same way.
func (e *ConflictError) ConflictPaths() []string { return e.Paths }

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// Merge returns a synthetic merge commit of head into base (parents: base,
// head), made without a work tree by `git merge-tree --write-tree` and `git
// commit-tree`. No ref changes: only new objects are written. The commit's
// author, committer and dates are fixed by its parents, so the same pair
// always gives the same commit id in every process; results are remembered
// per (base, head). Conflicts return a *ConflictError naming the paths.
func (m *Mirror) Merge(ctx context.Context, base, head string) (string, error) {
	if !IsFullSHA(base) || !IsFullSHA(head) {
		return "", fmt.Errorf("merge %s: needs full commit ids, got %q and %q", m.Name, base, head)
	}
	memo := filepath.Join(m.Dir, "gitfs-merges", base+"-"+head)
	if b, err := os.ReadFile(memo); err == nil {
		commit := strings.TrimSpace(string(b))
		if IsFullSHA(commit) && m.hasCommit(ctx, commit) {
			return commit, nil
		}
	}
	out, err := (gitCmd{dir: m.Dir, args: []string{"merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", base, head}}).run(ctx)
	var gerr *GitError
	if err != nil && !(errors.As(err, &gerr) && exitCode(gerr) == 1) {
		return "", fmt.Errorf("merge %s: %w", m.Name, err)
	}
	fields := bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0})
	if len(fields) == 0 || !IsFullSHA(string(fields[0])) {
		return "", fmt.Errorf("merge %s: unexpected merge-tree output %q", m.Name, out)
	}
	tree := string(fields[0])
	if err != nil { // exit 1: conflicts; the names follow the tree id
		seen := map[string]bool{}
		var paths []string
		for _, f := range fields[1:] {
			p := string(f)
			if p != "" && !seen[p] {
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return "", &ConflictError{Base: base, Head: head, Paths: paths}
	}
	when, err := m.commitDate(ctx, base, head)
	if err != nil {
		return "", err
	}
	msg := fmt.Sprintf("gitfs: merge %s into %s\n", head, base)
	env := []string{
		"GIT_AUTHOR_NAME=gitfs", "GIT_AUTHOR_EMAIL=gitfs@localhost", "GIT_AUTHOR_DATE=" + when,
		"GIT_COMMITTER_NAME=gitfs", "GIT_COMMITTER_EMAIL=gitfs@localhost", "GIT_COMMITTER_DATE=" + when,
	}
	out, err = (gitCmd{dir: m.Dir, args: []string{"commit-tree", tree, "-p", base, "-p", head, "-F", "-"}, stdin: []byte(msg), env: env}).run(ctx)
	if err != nil {
		return "", fmt.Errorf("merge %s: %w", m.Name, err)
	}
	commit := strings.TrimSpace(string(out))
	if !IsFullSHA(commit) {
		return "", fmt.Errorf("merge %s: unexpected commit-tree output %q", m.Name, out)
	}
	if err := os.MkdirAll(filepath.Dir(memo), 0o755); err == nil {
		tmp := fmt.Sprintf("%s.tmp-%d", memo, os.Getpid())
		// The memo only saves a merge-tree run: failing to write it is
		// harmless, but never leave the temp file behind.
		if os.WriteFile(tmp, []byte(commit+"\n"), 0o644) != nil || os.Rename(tmp, memo) != nil {
			os.Remove(tmp)
		}
	}
	return commit, nil
}

func exitCode(e *GitError) int {
	var ee interface{ ExitCode() int }
	if errors.As(e.Err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

func (m *Mirror) hasCommit(ctx context.Context, commit string) bool {
	_, err := (gitCmd{dir: m.Dir, args: []string{"cat-file", "-e", commit + "^{commit}"}}).run(ctx)
	return err == nil
}

// commitDate is the later committer date of the two parents, in git's
// internal "<unix> <tz>" form.
func (m *Mirror) commitDate(ctx context.Context, a, b string) (string, error) {
	out, err := (gitCmd{dir: m.Dir, args: []string{"show", "-s", "--format=%ct", a, b}}).run(ctx)
	if err != nil {
		return "", fmt.Errorf("merge %s: %w", m.Name, err)
	}
	latest := ""
	for _, l := range strings.Fields(string(out)) {
		if len(l) > len(latest) || (len(l) == len(latest) && l > latest) {
			latest = l
		}
	}
	return latest + " +0000", nil
}
