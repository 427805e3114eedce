//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
)

func init() {
	register(&command{
		name: "fsmonitor", args: "VERSION TOKEN", minArgs: 2, maxArgs: 2,
		summary: "git's fsmonitor hook in a workspace: print the paths changed since TOKEN",
		help: `Every workspace's .git/config names this command as core.fsmonitor, so that
git status asks gitfs what changed instead of looking at every file. git
runs it in the work tree's root with the hook protocol version (2) and the
token of its last answer; it prints a new token and the changed paths,
NUL-separated, or "/" when git must look at everything (a new token, or a
daemon restarted since). Linked worktrees share the config: in one inside
the workspace it answers with the paths below it; outside the mount (a
worktree elsewhere, a copy of the workspace) always "/". Any failure makes
git look at everything: never a wrong answer.`,
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if args[0] != "2" {
				return fmt.Errorf("fsmonitor protocol %q: gitfs speaks version 2 (core.fsmonitorHookVersion = 2)", args[0])
			}
			c := daemon.NewClient(e.root)
			st, err := c.Running(ctx)
			if err != nil {
				return err
			}
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			name, prefix, ok := workspaceOfDir(st.Mountpoint, wd)
			if !ok {
				// A worktree of the workspace's repository outside the
				// mount (git worktree add, a copy of the workspace)
				// shares its config: no journal covers it, so git must
				// look at everything, as without a hook.
				_, err := fmt.Fprint(e.stdout, "gitfs:outside\x00/\x00")
				return err
			}
			out, err := c.Changes(ctx, name, args[1])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(e.stdout, fsmonitorAnswer(out.Token, out.Full, out.Paths, prefix))
			return err
		},
	})
}

// workspaceOfDir names the workspace that wd, the work tree git runs the
// hook in, is in below the mount at mountpoint, and wd's path in it ("" for
// the workspace's root; a linked worktree's directory otherwise); ok is
// false outside every workspace.
func workspaceOfDir(mountpoint, wd string) (name, prefix string, ok bool) {
	if real, err := filepath.EvalSymlinks(mountpoint); err == nil {
		mountpoint = real // getcwd reports the real path
	}
	rel, err := filepath.Rel(mountpoint, wd)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", "", false
	}
	name, prefix, _ = strings.Cut(filepath.ToSlash(rel), "/")
	return name, prefix, true
}

// fsmonitorAnswer is the hook's output (protocol 2): the token, then the
// changed paths relative to the work tree, each NUL-terminated; "/" alone
// when git must look at everything (git honours it only as the first
// path). paths are the workspace's; for a work tree at prefix within it (a
// linked worktree) only those below it count, relative to it, and a change
// to prefix itself or to a directory above it (renamed, replaced) changes
// everything.
func fsmonitorAnswer(token string, full bool, paths []string, prefix string) string {
	all := token + "\x00/\x00"
	if full {
		return all
	}
	var b strings.Builder
	b.WriteString(token)
	b.WriteByte(0)
	for _, p := range paths {
		if prefix != "" {
			dir := strings.TrimSuffix(p, "/")
			if dir == prefix || strings.HasPrefix(prefix, dir+"/") {
				return all
			}
			rest, ok := strings.CutPrefix(p, prefix+"/")
			if !ok || rest == "" {
				continue
			}
			p = rest
		}
		b.WriteString(p)
		b.WriteByte(0)
	}
	return b.String()
}
