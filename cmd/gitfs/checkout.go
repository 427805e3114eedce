package main

import (
	"context"
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/materialize"
)

func init() {
	var workers int
	var withGit bool
	register(&command{
		name: "checkout", args: "REPO REV DIR", minArgs: 3, maxArgs: 3,
		summary: "write a commit's tree into DIR (absent or empty), in parallel",
		help: `DIR appears complete or not at all: the tree is written beside it and renamed
into place. A tree with unsafe names (.., .git, paths escaping DIR through
symlinks) is refused with an error naming the path.

Examples:
  gitfs checkout demo main ./out
  gitfs checkout demo v1.2 ./out --workers 8 --git`,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&workers, "workers", runtime.NumCPU(), "parallel file writers")
			fs.BoolVar(&withGit, "git", false, "also make DIR a git working tree at REV, with a clean 'git status'")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if workers < 1 {
				return usageError{"--workers must be at least 1"}
			}
			commit, err := e.resolve(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			st, err := e.openSnapshots()
			if err != nil {
				return err
			}
			snap, release, err := st.Get(ctx, args[0], commit)
			if err != nil {
				return err
			}
			defer release()
			opts := materialize.Options{Workers: workers, Git: withGit}
			if isTerminal(os.Stderr) {
				opts.Progress = os.Stderr
			}
			stats, err := materialize.Checkout(ctx, snap, args[2], opts)
			if err != nil {
				return err
			}
			e.log.Info("checkout done", "dir", args[2], "commit", commit, "files", stats.Files, "bytes", stats.Bytes)
			return nil
		},
	})
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

var _ = fmt.Sprint
