package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
)

func init() {
	var repoPath, mountpoint string
	register(&command{
		name: "quickstart", maxArgs: 0,
		summary: "mount a workspace of this git repository (no network, no set-up)",
		help: `Adds the git repository around the current directory (or --repo) as the
mirror "gitfs", serves a mount at --mountpoint, creates the workspace
"quickstart" at its HEAD, and prints what to try. Ctrl-C unmounts.

Example (from a clone of gitfs):
  go run ./cmd/gitfs quickstart`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&repoPath, "repo", ".", "git repository to mirror")
			fs.StringVar(&mountpoint, "mountpoint", "./mnt", "where to mount")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			out, err := exec.CommandContext(ctx, "git", "-C", repoPath, "rev-parse", "--show-toplevel").Output()
			if err != nil {
				return fmt.Errorf("%s is not inside a git repository: pass --repo PATH", repoPath)
			}
			top := strings.TrimSpace(string(out))
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			const name = "gitfs"
			if _, err := ms.Add(ctx, name, top); err != nil {
				return err
			}
			if _, err := ms.Fetch(ctx, name); err != nil {
				return err
			}
			mp, err := filepath.Abs(mountpoint)
			if err != nil {
				return err
			}
			d, err := startDaemon(e, mp, 0, true, false)
			if err != nil {
				return err
			}
			c := daemon.NewClient(e.root)
			ws, err := c.Create(ctx, daemon.CreateRequest{Name: "quickstart", Repo: name, Rev: "HEAD"})
			var re *daemon.RequestError
			if errors.As(err, &re) && re.Kind == "exists" {
				ws.Path = filepath.Join(mp, "quickstart")
				err = nil
			}
			if err != nil {
				d.Stop()
				return err
			}
			self, _ := os.Executable()
			if strings.Contains(self, "go-build") {
				self = "go run ./cmd/gitfs"
			}
			fmt.Fprintf(e.stdout, `gitfs is serving %[1]s at %[2]s

Try, in another terminal:
  ls %[3]s
      the workspace "quickstart": this repository at HEAD, writable, copy-on-write
  echo hello > %[3]s/NEW.txt && %[4]s --root %[1]s ws status quickstart
      your change, as git status --short shows it
  ls %[2]s/@gitfs/heads/ %[2]s/@gitfs/HEAD/
      every branch (also tags/ and commits/SHA/), read-only
  %[4]s --root %[1]s ws create try2 --repo gitfs --rev HEAD
      another workspace in milliseconds

Press Ctrl-C to unmount (workspaces and their changes stay in %[1]s).
`, e.root, mp, ws.Path, self)
			return waitAndStop(ctx, d, nil)
		},
	})
}
