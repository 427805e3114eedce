package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/internal/gitdir"
	"github.com/gitfs/gitfs/materialize"
)

func init() {
	var workers int
	var withGit, noInflate bool
	register(&command{
		name: "checkout", args: "REPO REV DIR", minArgs: 3, maxArgs: 3,
		summary: "write a commit's tree into DIR (absent or empty), in parallel",
		help: `DIR appears complete or not at all: the tree is written beside it (in
DIR.gitfs-tmp-*) by parallel writers and renamed into place. A tree with
unsafe names (.., .git and its aliases, names with /, duplicates, paths
escaping DIR through symlinks, depth or size bombs) is refused with an error
naming the path and the rule, and nothing is written. Files get the commit's
time as their mtime. With --git, DIR is a clone: its .git has the snapshot's
and the mirror's packs hard-linked in (it survives being moved, and no gc
takes its objects; on another file system it borrows the snapshot's through
objects/info/alternates instead), the repository's branches as origin's, its
tags and URL, HEAD detached at REV, and an index holding the written files'
stat data, so 'git status' is clean at once. Progress is shown
on stderr when it is a terminal (not with --quiet).

Files whose blobs the blob store (ROOT/blobs, one inflated copy of each blob
for every commit) already holds are copied from it in the kernel; the rest
are decompressed from the packs. Where DIR's file system can share blocks
with the store (reflinks: btrfs, xfs, bcachefs) the checkout first fills the
store with what it lacks, so that the files cost no second copy on disk;
elsewhere it leaves the store as it is, since filling it would write every
file twice. --no-inflate never fills it.

Examples:
  gitfs checkout demo main ./out
  gitfs checkout demo v1.2 ./out --workers 8 --git`,
		flags: func(fs *pflag.FlagSet) {
			fs.IntVar(&workers, "workers", runtime.NumCPU(), "parallel file writers")
			fs.BoolVar(&withGit, "git", false, "also make DIR a git working tree at REV, with a clean 'git status'")
			fs.BoolVar(&noInflate, "no-inflate", false, "never fill the blob store ROOT/blobs with this commit's blobs (what it holds is still copied)")
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
			if os.Getenv("GOMEMLIMIT") == "" {
				// A checkout streams through bounded buffers and caches;
				// without a limit the default GC pacing lets garbage
				// (inflated delta bases) double its footprint. 160 MiB
				// keeps peak RSS under 200 MiB on 100k-file trees.
				debug.SetMemoryLimit(160 << 20)
			}
			opts := materialize.Options{Workers: workers, Git: withGit, NoInflate: noInflate, Log: e.log}
			if withGit {
				if opts.Remote, err = e.remote(ctx, args[0]); err != nil {
					return err
				}
			}
			opts.Progress = e.progress()
			stats, err := materialize.Checkout(ctx, snap, args[2], opts)
			if err != nil {
				return err
			}
			if stats.GitBorrows {
				// DIR's .git borrows the snapshot's objects: keep it.
				if err := st.AddHolder(commit, args[2]); err != nil {
					return err
				}
			}
			if n := len(stats.Collided); n > 0 {
				// As git does: the tree has paths this file system cannot
				// tell apart; the last one in tree order was kept.
				fmt.Fprintf(e.stderr, "gitfs checkout: warning: %d paths collided on this case-insensitive file system (last one kept), first: %q\n", n, stats.Collided[0])
			}
			e.log.Info("checkout done", "dir", args[2], "commit", commit, "files", stats.Files,
				"bytes", stats.Bytes, "dirs", stats.Dirs, "symlinks", stats.Symlinks)
			return nil
		},
	})
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// remote is what a clone-like checkout's .git knows of repo: its mirror's
// URL, branches, tags and HEAD, and the mirror's packs to link in.
func (e *env) remote(ctx context.Context, repo string) (*materialize.Remote, error) {
	m, err := e.mirrors.Get(ctx, repo)
	if err != nil {
		return nil, err
	}
	url, err := m.URL(ctx)
	if err != nil {
		return nil, err
	}
	refs, head, err := m.RefList(ctx)
	if err != nil {
		return nil, err
	}
	r := &materialize.Remote{Repo: repo, URL: url, Head: head}
	if r.Objects, err = filepath.Abs(filepath.Join(m.Dir, "objects")); err != nil {
		return nil, err
	}
	for _, ref := range refs {
		r.Refs = append(r.Refs, gitdir.Ref{Name: ref.Name, ID: ref.ID, Peeled: ref.Peeled})
	}
	r.Packs, err = filepath.Glob(filepath.Join(r.Objects, "pack", "pack-*"))
	return r, err
}
