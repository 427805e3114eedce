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
runs it in the workspace's root with the hook protocol version (2) and the
token of its last answer; it prints a new token and the changed paths,
NUL-separated, or "/" when git must look at everything (a new token, or a
daemon restarted since). Any failure makes git look at everything: never a
wrong answer.`,
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if args[0] != "2" {
				return fmt.Errorf("fsmonitor protocol %q: gitfs speaks version 2 (core.fsmonitorHookVersion = 2)", args[0])
			}
			c := daemon.NewClient(e.root)
			st, err := c.Running(ctx)
			if err != nil {
				return err
			}
			name, err := workspaceOfDir(st.Mountpoint)
			if err != nil {
				return err
			}
			out, err := c.Changes(ctx, name, args[1])
			if err != nil {
				return err
			}
			var b strings.Builder
			b.WriteString(out.Token)
			b.WriteByte(0)
			if out.Full {
				b.WriteString("/\x00")
			}
			for _, p := range out.Paths {
				b.WriteString(p)
				b.WriteByte(0)
			}
			_, err = fmt.Fprint(e.stdout, b.String())
			return err
		},
	})
}

// workspaceOfDir names the workspace the current directory is in, below
// the mount at mountpoint.
func workspaceOfDir(mountpoint string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(mountpoint); err == nil {
		mountpoint = real // getcwd reports the real path
	}
	rel, err := filepath.Rel(mountpoint, wd)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", fmt.Errorf("%s is not in a workspace under %s", wd, mountpoint)
	}
	name, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	return name, nil
}
