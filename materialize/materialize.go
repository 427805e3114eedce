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
//     descriptor opened with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (with
//     Options.As, a batch of files at a time as that user). Bytes come
//     from the blob store ROOT/blobs (every blob inflated once for all
//     commits, and filled first with what it lacks of this one), by
//     reflink where the file system has them and copy_file_range
//     elsewhere, or, without the store, are streamed from the packs, never
//     held whole.
//  4. Write colliding files, then symlinks, sequentially. No symlink
//     exists while any file is written, and symlinks never replace
//     anything, so no write can be redirected through one.
//  5. Run Options.Finish, write .git if asked, and publish the temp
//     directory as DIR with one rename(2).
//
// Everything is built in DIR.gitfs-tmp-<pid>-<random>; a failed or
// refused checkout removes it, a killed one leaves it for the next run to
// clean, and DIR is either absent (or as empty as it was) or complete.
//
// The target is a name inside a directory held open (CheckoutAt; Checkout
// opens DIR's parent and calls it): the target check, the temp dir, every
// entry and the publish are resolved relative to that descriptor, never
// through a host path. When the daemon writes for a caller, Options.As
// makes every creating call run with the caller's credentials
// (internal/asuser): the kernel checks permissions as the caller and the
// caller owns every entry from its creation, so nothing is ever chowned.
// The snapshot is read with the daemon's own credentials.
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
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/asuser"
	"github.com/gitfs/gitfs/locks"
	"github.com/gitfs/gitfs/snapshot"
)

// Options tune a checkout.
type Options struct {
	Workers int  // parallel file writers; <= 0 means the CPU count
	Git     bool // make DIR a git working tree at the commit
	// Remote, with Git, is what the clone-like .git knows of the
	// repository (see gitdir.go); nil: only the commit, its objects
	// borrowed from the snapshot.
	Remote   *Remote
	Progress io.Writer // progress lines for long runs; nil for none
	// Finish, if set, runs on the finished tree before it is published
	// (ws export applies a workspace's changes here). The root confines
	// it to the tree. With As, the whole of Finish runs as that user, on
	// one locked thread: what it creates is the user's, and what it reads
	// is checked as the user too (read the daemon's own files before, or
	// from a goroutine Finish starts, which runs as the daemon).
	Finish func(root *os.Root) error
	// NoInflate leaves the blob store as it is: blobs it lacks are
	// inflated from the packs straight into DIR. By default a checkout
	// whose target can share blocks with the store (reflinks) first stores
	// every blob of the commit the store lacks (once for all commits and
	// checkouts), then clones from there; on other file systems it
	// behaves as with NoInflate.
	NoInflate bool
	// Log receives notes on fallbacks (e.g. the store not filled); nil
	// discards them.
	Log *slog.Logger
	// As, if set, is the user everything the checkout creates in the
	// target is created as: the target check, the stale-temp cleanup, the
	// temp dir, directories, files, symlinks, the case-sensitivity probe,
	// .git, Finish and the publish run with As's file-system credentials,
	// so the kernel checks permissions as As and As owns every entry.
	// Reading the snapshot keeps the daemon's credentials. nil: the
	// process's own credentials.
	As *asuser.User
}

// Stats counts what was written.
type Stats struct {
	Files    int64 // regular files
	Bytes    int64 // bytes of regular files
	Dirs     int64 // directories, including gitlinks' empty ones
	Symlinks int64
	// GitBorrows: .git borrows the snapshot's objects (alternates, when
	// its packs could not be linked in), so the snapshot must be kept.
	GitBorrows bool
	// Collided lists paths whose names fold together on a case-insensitive
	// file system; of each such group only the last in tree order is on
	// disk (git does and warns the same).
	Collided []string
}

// Checkout writes snap's tree into dir, which must be absent or empty.
// On any error dir is left as it was; a refused tree gives a
// *RefusedError naming the path and the rule. dir's parent is resolved
// once, as opts.As when set, and the rest is CheckoutAt.
func Checkout(ctx context.Context, snap *snapshot.Snapshot, dir string, opts Options) (Stats, error) {
	if snap == nil {
		return Stats{}, errors.New("checkout: no snapshot")
	}
	return checkout(ctx, snap, dir, opts, defaultLimits)
}

// CheckoutAt writes snap's tree into name inside the directory open as
// parentFD (an O_PATH or O_RDONLY directory descriptor, typically opened
// by the caller the daemon writes for). name is one path element; the
// target must be absent or an empty directory. Everything is resolved
// relative to parentFD, never through a host path. Otherwise as Checkout.
func CheckoutAt(ctx context.Context, snap *snapshot.Snapshot, parentFD int, name string, opts Options) (Stats, error) {
	if snap == nil {
		return Stats{}, errors.New("checkout: no snapshot")
	}
	return checkoutAt(ctx, snap, parentFD, name, "", opts, defaultLimits)
}

func checkout(ctx context.Context, src source, dir string, opts Options, lim limits) (Stats, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Stats{}, fmt.Errorf("checkout into %s: %w", dir, err)
	}
	parent, name := filepath.Dir(abs), filepath.Base(abs)
	if err := checkTargetName(name); err != nil {
		return Stats{}, fmt.Errorf("checkout into %s: %w", abs, err)
	}
	var pfd int
	err = opts.As.Do(func() (err error) {
		pfd, err = unix.Open(parent, oPath|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return Stats{}, fmt.Errorf("checkout into %s: parent directory %s does not exist: create it first", abs, parent)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("checkout into %s: open parent directory: %w", abs, err)
	}
	defer unix.Close(pfd)
	return checkoutAt(ctx, src, pfd, name, abs, opts, lim)
}

// checkoutAt is CheckoutAt; where is the target's full path for messages
// and the PATH_MAX rule ("": ask /proc).
func checkoutAt(ctx context.Context, src source, pfd int, name, where string, opts Options, lim limits) (Stats, error) {
	var stats Stats
	if err := checkTargetName(name); err != nil {
		return stats, fmt.Errorf("checkout: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return stats, fmt.Errorf("checkout into %q: the parent descriptor is not an open directory", name)
	}
	if where == "" {
		where = targetPath(pfd, name)
	}
	as := opts.As
	var existed bool
	err := as.Do(func() (err error) {
		existed, err = checkTarget(pfd, name, where)
		return err
	})
	if err != nil {
		return stats, err
	}
	// The stale-temp cleanup, the temp dir and its descriptor, all as the
	// user: they can only remove what the user could, and the temp dir,
	// which becomes the target, is the user's from the start.
	var tmp string
	rootfd := -1
	err = as.Do(func() (err error) {
		locks.CleanStaleAt(pfd, name)
		if tmp, err = locks.TempDirAt(pfd, name); err != nil {
			return err
		}
		rootfd, err = unix.Openat(pfd, tmp, oPath|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open temp dir: %w", err)
		}
		return nil
	})
	published := false
	defer func() {
		if rootfd >= 0 {
			unix.Close(rootfd)
		}
		if tmp != "" && !published {
			as.Do(func() error { return locks.RemoveAllAt(pfd, tmp) })
		}
	}()
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: %w", where, err)
	}

	var fold bool
	err = as.Do(func() (err error) {
		fold, err = caseInsensitive(rootfd)
		return err
	})
	if err != nil {
		return stats, fmt.Errorf("checkout into %s: probe case sensitivity: %w", where, err)
	}
	p, err := makePlan(ctx, src, len(where), fold, lim)
	if err != nil {
		return stats, err
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	w := newWriter(src, rootfd, p, opts.Git, mtimeFor(src.CommitTime(), time.Now()))
	w.as = as
	prog := startProgress(opts.Progress, len(p.files)+len(p.links), &w.files, &w.bytes)
	w.stored, err = fillStore(ctx, src, rootfd, as, workers, opts, prog)
	if err == nil {
		err = w.run(ctx, workers)
	}
	prog.stop(err == nil)
	if err != nil {
		return stats, err
	}
	stats = Stats{Files: w.files.Load(), Bytes: w.bytes.Load(), Dirs: int64(len(p.dirs) - 1),
		Symlinks: int64(len(p.links)), Collided: w.collided}

	if opts.Finish != nil {
		err := as.Do(func() error { return withRoot(rootfd, opts.Finish) })
		if err != nil {
			return stats, fmt.Errorf("checkout into %s: finishing: %w", where, err)
		}
	}
	if opts.Git {
		objects, err := filepath.Abs(src.ObjectsDir())
		if err == nil {
			err = as.Do(func() error {
				return withRoot(rootfd, func(root *os.Root) error {
					borrows, err := writeGitDir(root, objects, src, w, opts.Remote)
					stats.GitBorrows = borrows
					return err
				})
			})
		}
		if err != nil {
			return stats, fmt.Errorf("checkout into %s: .git: %w", where, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	if err := as.Do(func() error { return publish(pfd, tmp, name, where, existed) }); err != nil {
		return stats, err
	}
	published = true
	return stats, nil
}

// checkTargetName accepts one path element: the target is a name inside
// its parent, never a path to resolve.
func checkTargetName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') || strings.IndexByte(name, 0) >= 0 {
		return fmt.Errorf("target name %q is not a single path element: give a directory name", name)
	}
	return nil
}

// targetPath is the full path of name in the directory open as pfd, as
// the kernel names that directory, for messages and the PATH_MAX rule.
// Best effort: the name alone when /proc cannot tell.
func targetPath(pfd int, name string) string {
	dir, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(pfd))
	if err != nil || !strings.HasPrefix(dir, "/") {
		return name
	}
	return filepath.Join(dir, name)
}

// withRoot runs fn on an *os.Root of the directory open as dirfd. The
// root is opened through /proc/self/fd, which reopens that very directory
// (a magic link, not a path walk), since os.Root has no constructor from a
// descriptor.
func withRoot(dirfd int, fn func(*os.Root) error) error {
	root, err := os.OpenRoot("/proc/self/fd/" + strconv.Itoa(dirfd))
	if err != nil {
		return fmt.Errorf("open the tree: %w", err)
	}
	defer root.Close()
	return fn(root)
}

// storeSource is a source whose blobs the blob store can hold.
type storeSource interface {
	Fill(ctx context.Context, opts snapshot.FillOptions) (snapshot.FillStats, error)
	StoredFD(id snapshot.ID) (int, int64, error)
	StoreSharesBlocksWith(dirfd int, mkTarget func(func() error) error) bool
}

// fillStore stores every blob of src the blob store lacks, unless
// opts.NoInflate or the target cannot share blocks with the store, and
// tells whether files are to be copied from the store (else streamed from
// the packs: the source has no store, or filling it failed, the disk full
// say). Only cancellation is an error.
//
// Without reflinks a fill would create every file twice, once in the
// store and once in the target (measured on ext4, 20k files: 10.2-14.2 s
// against 5.5-7.6 s streaming): then what the store holds is copied and
// the rest streamed from the packs, and the store is left as it is.
func fillStore(ctx context.Context, src source, rootfd int, as *asuser.User, workers int, opts Options, prog *progress) (storeSource, error) {
	ss, ok := src.(storeSource)
	if !ok {
		return nil, nil
	}
	if opts.NoInflate || !ss.StoreSharesBlocksWith(rootfd, as.Do) {
		return ss, nil
	}
	prog.phase("inflating")
	_, err := ss.Fill(ctx, snapshot.FillOptions{Workers: workers, Progress: prog.inflated})
	prog.phase("")
	if err == nil {
		return ss, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return nil, ctxErr
	}
	if opts.Log != nil {
		opts.Log.Info("reading blobs from the packs", "commit", src.Commit(), "reason", err.Error())
	}
	return nil, nil
}

// checkTarget accepts an absent or empty directory name inside pfd (not
// a symlink to one: the rename would replace the link, not fill its
// target) and reports whether it exists.
func checkTarget(pfd int, name, where string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checkout into %s: %w", where, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, fmt.Errorf("checkout into %s: exists and is not a directory: give an absent or empty directory", where)
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("checkout into %s: %w", where, err)
	}
	f := os.NewFile(uintptr(fd), where)
	names, err := f.Readdirnames(1)
	f.Close()
	if len(names) > 0 {
		return false, fmt.Errorf("checkout into %s: directory is not empty: give an absent or empty directory", where)
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("checkout into %s: %w", where, err)
	}
	return true, nil
}

// publish renames the finished tree tmp into place as name, both inside
// pfd. An empty target that existed is removed first (rmdir refuses if
// something appeared in it meanwhile); RENAME_NOREPLACE then refuses to
// replace anything that appeared since.
func publish(pfd int, tmp, name, where string, existed bool) error {
	if existed {
		if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("checkout into %s: directory is no longer empty (%w): nothing was replaced", where, err)
		}
	}
	err := renameNoReplace(pfd, tmp, pfd, name)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// No RENAME_NOREPLACE on this file system: plain rename still
		// refuses a non-empty target, and the lstat closes most of the
		// remaining window.
		var st unix.Stat_t
		if lerr := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); lerr == nil {
			err = unix.EEXIST
		} else {
			err = unix.Renameat(pfd, tmp, pfd, name)
		}
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("checkout into %s: it appeared while checking out: nothing was replaced", where)
	}
	if err != nil {
		return fmt.Errorf("checkout into %s: publish: %w", where, err)
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
