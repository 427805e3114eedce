package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/daemon"
)

func init() {
	var repo, rev, mergeInto string
	var createFetch bool
	register(&command{
		name: "ws create", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "create a workspace of a commit (or of a merge) and print its path",
		help: `Ready in milliseconds whatever the size of the tree: nothing is copied; files
are read lazily and changes go to the workspace's own upper layer. With
--merge-into, the workspace shows a merge of --rev into BASE, made without a
work tree; no ref of the mirror changes. Conflicts fail with the paths.
NAME: letters, digits, '.', '_', '-'; not starting with '.' or '@'.

With --fetch, the mirror is fetched first: for a commit pushed a moment ago
(a CI job's own commit), which a mirror fetched every few minutes may not
have yet.

Examples:
  gitfs ws create job1 --repo demo --rev main
  gitfs ws create ci-42 --repo demo --rev 3f2a9c1 --fetch
  gitfs ws create pr7 --repo demo --rev feature --merge-into main`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&repo, "repo", "", "repository (as added with 'gitfs repo add')")
			fs.StringVar(&rev, "rev", "", "branch, tag, HEAD or commit")
			fs.StringVar(&mergeInto, "merge-into", "", "show REV merged into this branch, tag or commit")
			fs.BoolVar(&createFetch, "fetch", false, "fetch the mirror first (for a commit just pushed)")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if repo == "" || rev == "" {
				return usageError{"--repo and --rev are required"}
			}
			out, err := daemon.NewClient(e.root).Create(ctx, daemon.CreateRequest{Name: args[0], Repo: repo, Rev: rev, MergeInto: mergeInto, Fetch: createFetch})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, out.Path)
			return nil
		},
	})
	var wsListJSON, wsStatusJSON bool
	register(&command{
		name: "ws list", maxArgs: 0,
		summary: "list workspaces: NAME REPO COMMIT CREATED CHANGED-FILES",
		help: `Lists your workspaces (root: everyone's). --json gives each one's full
record: repository, rev, commit, merge base, owner, path and changed files.`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&wsListJSON, "json", false, "print the workspaces as JSON")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			list, err := daemon.NewClient(e.root).List(ctx)
			if err != nil {
				return err
			}
			if wsListJSON {
				if list == nil {
					list = []daemon.Workspace{}
				}
				return writeJSON(e.stdout, list)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tREPO\tCOMMIT\tCREATED\tCHANGED-FILES")
			for _, w := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", w.Name, w.Repo, shortSHA(w.Commit), w.Created.Local().Format(time.DateTime), w.ChangedFiles)
			}
			return tw.Flush()
		},
	})
	register(&command{
		name: "ws rm", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "remove a workspace and its changes",
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			return daemon.NewClient(e.root).Remove(ctx, args[0])
		},
	})
	register(&command{
		name: "ws status", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "list a workspace's changed paths: A/M/D/R, like git status --short",
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&wsStatusJSON, "json", false, `print the changes as JSON ({"op", "path", "from"} each)`)
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			changes, err := daemon.NewClient(e.root).Status(ctx, args[0])
			if err != nil {
				return err
			}
			if wsStatusJSON {
				if changes == nil {
					changes = []daemon.Change{}
				}
				return writeJSON(e.stdout, changes)
			}
			for _, c := range changes {
				if c.Op == "R" && c.From != "" {
					fmt.Fprintf(e.stdout, "R  %s -> %s\n", c.From, c.Path)
					continue
				}
				fmt.Fprintf(e.stdout, "%s  %s\n", c.Op, c.Path)
			}
			return nil
		},
	})
	var updRev string
	var updFetch, discard, reset bool
	register(&command{
		name: "ws update", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "move a workspace to a new commit atomically, keeping its changes",
		help: `Re-resolves the workspace's --rev (and --merge-into), or moves it to --rev.
New lookups see the new tree at once; files opened before keep reading the old
bytes. If a local change touches a path that also changed between the old and
the new commit, the update is refused and names the paths, unless
--discard-changes drops those local changes.

--reset drops every local change instead (modified, new and deleted files;
the .git dir keeps its own state, as a clone's does): the workspace shows the
new commit as a new workspace would, but every file unchanged between the two
commits keeps its inode, so what the kernel caches of it still serves. A CI
agent that reuses one workspace per slot this way reads a new commit at the
speed of a persistent clone's 'git checkout -f && git clean -fdx', where a new
workspace reads every file through FUSE once more.

Examples:
  gitfs ws update pr7 --fetch
  gitfs ws update job1 --rev v2
  gitfs ws update slot1 --rev "$CI_COMMIT" --reset`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&updRev, "rev", "", "move to this branch, tag or commit instead of re-resolving the workspace's own")
			fs.BoolVar(&updFetch, "fetch", false, "fetch the mirror first")
			fs.BoolVar(&discard, "discard-changes", false, "drop local changes to paths that changed upstream instead of refusing")
			fs.BoolVar(&reset, "reset", false, "drop every local change: the workspace becomes what a new one at the commit would be, keeping the kernel's cache of unchanged files")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			out, err := daemon.NewClient(e.root).Update(ctx, args[0], daemon.UpdateRequest{Rev: updRev, Fetch: updFetch, DiscardChanges: discard, Reset: reset})
			if err != nil {
				return err
			}
			if out.From == out.To && reset {
				fmt.Fprintf(e.stdout, "%s: reset at %s\n", args[0], shortSHA(out.To))
			} else if out.From == out.To {
				fmt.Fprintf(e.stdout, "%s: already at %s\n", args[0], shortSHA(out.To))
			} else {
				fmt.Fprintf(e.stdout, "%s: %s -> %s\n", args[0], shortSHA(out.From), shortSHA(out.To))
			}
			return nil
		},
	})
	var workers int
	register(&command{
		name: "ws export", args: "NAME DIR", minArgs: 2, maxArgs: 2,
		summary: "write a workspace (its commit plus its changes) to a real directory",
		help: `DIR must be absent or empty; it appears complete or not at all. The daemon
writes it with your credentials: you need write permission where DIR is made,
and you own every file in it.

Example:
  gitfs ws export job1 ./job1-tree`,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&workers, "workers", min(runtime.NumCPU(), 64), "parallel file writers (1 to 64)")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if workers < 1 || workers > 64 {
				return usageError{"--workers must be between 1 and 64"}
			}
			dir, err := filepath.Abs(args[1])
			if err != nil {
				return err
			}
			// The daemon takes this descriptor from us and creates DIR in
			// it as us: it resolves no path on our behalf.
			parent, err := unix.Open(filepath.Dir(dir), oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("export into %s: parent directory: %w", dir, err)
			}
			defer unix.Close(parent)
			stop := startTicker(e.progress(), "ws export")
			start := time.Now()
			out, err := daemon.NewClient(e.root).Export(ctx, args[0], daemon.ExportRequest{
				DirFD: &parent, Name: filepath.Base(dir), Workers: workers,
			})
			if err != nil {
				stop("")
				return err
			}
			took := time.Since(start)
			stop(fmt.Sprintf("%d files, %.1f MiB in %s, done", out.Files, float64(out.Bytes)/(1<<20), took.Round(10*time.Millisecond)))
			e.log.Info("exported", "workspace", args[0], "dir", dir, "files", out.Files, "bytes", out.Bytes)
			return nil
		},
	})
}

func shortSHA(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
