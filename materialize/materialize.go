// Package materialize writes a snapshot's tree to a real directory, in
// parallel, faster than git checkout, and safely whatever the tree holds.
//
// How a checkout runs:
//
//  1. Plan, sequentially and in memory: walk every tree, validate every
//     name (., .., .git and its aliases, /, NUL, duplicates, NAME_MAX,
//     PATH_MAX, depth and entry-count bombs) and detect names that fold
//     together on a case-insensitive target. A hostile tree is refused
//     here, before anything is written.
//  2. Create the directories, sequentially, parents first, each relative
//     to its parent's descriptor.
//  3. Write the regular files in parallel: each worker owns a contiguous
//     range of the file list (so workers stay in different directories)
//     and steals from the others' tails when it runs dry. Files are
//     created with O_CREAT|O_EXCL|O_NOFOLLOW relative to a directory
//     descriptor opened with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS. Bytes
//     come from the snapshot's contents file (every blob inflated once,
//     by the first checkout of the commit) with copy_file_range, or are
//     streamed from the packs, never held whole.
//  4. Write colliding files, then symlinks, sequentially. No symlink
//     exists while any file is written, and symlinks never replace
//     anything, so no write can be redirected through one.
//  5. Run Options.Finish, write .git if asked, and publish the temp
//     directory as DIR with one rename(2).
//
// Everything is built in DIR.gitfs-tmp-<pid>-<random>; a failed or
// refused checkout removes it, a killed one leaves it for the next run to
// clean, and DIR is either absent (or as empty as it was) or complete.
package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

// Options tune a checkout.
type Options struct {
	Workers  int       // parallel file writers; <= 0 means the CPU count
	Git      bool      // make DIR a git working tree at the commit
	Progress io.Writer // progress lines for long runs; nil for none
	// Finish, if set, runs on the finished tree before it is published
	// (ws export applies a workspace's changes here). The root confines
	// it to the tree.
	Finish func(root *os.Root) error
	// NoInflate leaves the snapshot's contents file unmade when it does
	// not exist: blobs are inflated from the packs straight into DIR.
	// By default the first checkout of a commit inflates every blob once
	// into the snapshot, and every checkout copies from there.
	NoInflate bool
	// Log receives notes on fallbacks (e.g. contents not inflated); nil
	// discards them.
	Log *slog.Logger
}

// Stats counts what was written.
type Stats struct {
	Files    int64 // regular files
	Bytes    int64 // bytes of regular files
	Dirs     int64 // directories, including gitlinks' empty ones
	Symlinks int64
	// Collided lists paths whose names fold together on a case-insensitive
	// file system; of each such group only the last in tree order is on
	// disk (git does and warns the same).
	Collided []string
}

// Checkout writes snap's tree into dir, which must be absent or empty.
// On any error dir is left as it was; a refused tree gives a
// *RefusedError naming the path and the rule.
func Checkout(ctx context.Context, snap *snapshot.Snapshot, dir string, opts Options) (Stats, error) {
	if snap == nil {
		return Stats{}, errors.New("checkout: no snapshot")
	}
	return checkout(ctx, snap, dir, opts, defaultLimits)
}

func checkout(ctx context.Context, src source, dir string, opts Options, lim limits) (Stats, error) {
	var stats Stats
	abs, err := filepath.Abs(dir)
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: %w", dir, err)
	}
	existed, err := checkTarget(abs)
	if err != nil {
		return stats, err
	}
	locks.CleanStale(abs)
	tmp, err := locks.TempDir(abs)
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: %w", abs, err)
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(tmp)
		}
	}()
	rootfd, err := unix.Open(tmp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: open temp dir: %w", abs, err)
	}
	defer unix.Close(rootfd)

	fold, err := caseInsensitive(rootfd)
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: probe case sensitivity: %w", abs, err)
	}
	p, err := makePlan(ctx, src, len(abs), fold, lim)
	if err != nil {
		return stats, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	w := newWriter(src, rootfd, p, opts.Git, mtimeFor(src.CommitTime(), time.Now()))
	prog := startProgress(opts.Progress, len(p.files)+len(p.links), &w.files, &w.bytes)
	w.contents, err = contentsFor(ctx, src, workers, opts, prog)
	if err == nil {
		err = w.run(ctx, workers)
	}
	if w.contents != nil {
		w.contents.Close()
	}
	prog.stop(err == nil)
	if err != nil {
		return stats, err
	}
	stats = Stats{Files: w.files.Load(), Bytes: w.bytes.Load(), Dirs: int64(len(p.dirs) - 1),
		Symlinks: int64(len(p.links)), Collided: w.collided}

	if opts.Finish != nil {
		root, err := os.OpenRoot(tmp)
		if err != nil {
			return stats, fmt.Errorf("checkout into %s: %w", abs, err)
		}
		err = opts.Finish(root)
		root.Close()
		if err != nil {
			return stats, fmt.Errorf("checkout into %s: finishing: %w", abs, err)
		}
	}
	if opts.Git {
		if err := writeGitDir(tmp, src, w); err != nil {
			return stats, fmt.Errorf("checkout into %s: .git: %w", abs, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	if err := publish(tmp, abs, existed); err != nil {
		return stats, err
	}
	published = true
	return stats, nil
}

// contentsSource is a source whose blobs can be inflated once into a file
// and then copied from it.
type contentsSource interface {
	Contents() (*snapshot.Contents, error)
	Inflate(ctx context.Context, opts snapshot.InflateOptions) (*snapshot.Contents, error)
}

// contentsFor returns the snapshot's contents file (to be closed), making
// it first unless opts.NoInflate, or nil when the blobs are to be read from the packs: the
// source has none, or it cannot be made now (another process is making
// it, or the disk is full). Only cancellation is an error.
func contentsFor(ctx context.Context, src source, workers int, opts Options, prog *progress) (*snapshot.Contents, error) {
	cs, ok := src.(contentsSource)
	if !ok {
		return nil, nil
	}
	c, err := cs.Contents()
	if err == nil {
		return c, nil
	}
	if errors.Is(err, snapshot.ErrNoContents) && !opts.NoInflate {
		prog.phase("inflating")
		c, err = cs.Inflate(ctx, snapshot.InflateOptions{Workers: workers, Progress: prog.inflated, Early: true})
		prog.phase("")
		if err == nil {
			return c, nil
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	if !errors.Is(err, snapshot.ErrNoContents) && opts.Log != nil {
		opts.Log.Info("reading blobs from the packs", "commit", src.Commit(), "reason", err.Error())
	}
	return nil, nil
}

// checkTarget accepts an absent or empty directory (not a symlink to
// one: the rename would replace the link, not fill its target) and
// reports whether it exists.
func checkTarget(abs string) (bool, error) {
	fi, err := os.Lstat(abs)
	if errors.Is(err, os.ErrNotExist) {
		parent := filepath.Dir(abs)
		if pfi, perr := os.Stat(parent); perr != nil || !pfi.IsDir() {
			return false, fmt.Errorf("checkout into %s: parent directory %s does not exist: create it first", abs, parent)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkout into %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("checkout into %s: exists and is not a directory: give an absent or empty directory", abs)
	}
	f, err := os.Open(abs)
	if err != nil {
		return false, fmt.Errorf("checkout into %s: %w", abs, err)
	}
	names, err := f.Readdirnames(1)
	f.Close()
	if len(names) > 0 {
		return false, fmt.Errorf("checkout into %s: directory is not empty: give an absent or empty directory", abs)
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("checkout into %s: %w", abs, err)
	}
	return true, nil
}

// publish renames the finished tree into place. An empty DIR that existed
// is removed first (rmdir refuses if something appeared in it meanwhile);
// RENAME_NOREPLACE then refuses to replace anything that appeared since.
func publish(tmp, abs string, existed bool) error {
	if existed {
		if err := unix.Rmdir(abs); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("checkout into %s: directory is no longer empty (%w): nothing was replaced", abs, err)
		}
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, abs, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_NOREPLACE on this file system: plain rename still
		// refuses a non-empty target, and the Lstat closes most of the
		// remaining window.
		if _, lerr := os.Lstat(abs); lerr == nil {
			err = unix.EEXIST
		} else {
			err = unix.Rename(tmp, abs)
		}
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("checkout into %s: it appeared while checking out: nothing was replaced", abs)
	}
	if err != nil {
		return fmt.Errorf("checkout into %s: publish: %w", abs, err)
	}
	return nil
}

// caseInsensitive probes whether the temp dir (and so everything created
// under it, which inherits ext4's casefold flag) folds case: create one
// name, look for another spelling of it.
func caseInsensitive(rootfd int) (bool, error) {
	const upper, lower = ".gitfs-CASE-probe", ".gitfs-case-probe"
	fd, err := unix.Openat(rootfd, upper, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, err
	}
	unix.Close(fd)
	defer unix.Unlinkat(rootfd, upper, 0)
	var st unix.Stat_t
	err = unix.Fstatat(rootfd, lower, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return false, err
}

// mtimeFor is every written entry's modification time: the commit time,
// as git archive gives it, which makes checkouts of a commit identical.
// It also keeps --git's index clean without hashing: git re-reads every
// entry whose mtime is not older than the index itself ("racily clean"),
// so the time is clamped to at least two seconds before now.
func mtimeFor(commit, now time.Time) time.Time {
	limit := now.Add(-2 * time.Second)
	if commit.IsZero() || commit.After(limit) {
		return limit.Truncate(time.Second)
	}
	return commit
}
