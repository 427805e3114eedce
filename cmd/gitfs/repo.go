package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/housekeeping"
	"github.com/gitfs/gitfs/internal/blobstore"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

func init() {
	var addAccess accessFlags
	var addRefs string
	register(&command{
		name: "repo add", args: "NAME URL", minArgs: 2, maxArgs: 2,
		summary: "add a bare mirror of a repository (a path, file://, https:// or ssh URL)",
		help: `The mirror lives in ROOT/mirrors/NAME.git and is shared by every gitfs process
on this host. Adding a name that exists with the same URL succeeds and changes
nothing, so concurrent adds are safe.

A repository is private to its owner (by default you): only the owner and root
may create workspaces of it and read it under MOUNT/@NAME. --group lets that
group's members in too, --public every local user; 'gitfs repo access' changes
it later.

Every ref is mirrored unless --refs names the kinds to keep: heads,tags for a
remote whose refs/pull/* or refs/changes/* are many or broken. Fetches and
re-clones keep to the choice. On a terminal git shows its progress (not with
--quiet).

Example:
  gitfs repo add demo https://example.com/demo.git
  gitfs repo add gh https://github.com/org/big.git --refs heads,tags
  gitfs repo add local ./some/checkout
  sudo gitfs repo add app https://example.com/app.git --owner ci --group builders`,
		flags: func(fs *pflag.FlagSet) {
			addAccess.register(fs)
			fs.StringVar(&addRefs, "refs", "all", "which refs to mirror: all, or ref kinds such as heads,tags (refs/KIND/*)")
		},
		run: func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
			if err := mirror.ValidateName(args[0]); err != nil {
				return err
			}
			refs, err := mirror.ParseRefs(addRefs)
			if err != nil {
				return usageError{err.Error()}
			}
			// A bad --owner or --group is refused before anything is cloned.
			if _, err := addAccess.apply(fs, mirror.Access{}); err != nil {
				return err
			}
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			ms.SetProgress(e.progress())
			_, aerr := ms.Access(args[0])
			existed := aerr == nil
			if _, err := ms.AddRefs(ctx, args[0], args[1], refs); err != nil {
				return err
			}
			if existed && !addAccess.changed(fs) {
				return nil // an existing repository keeps its access
			}
			a := mirror.Access{Owner: uint32(os.Getuid())}
			if existed {
				if a, err = ms.Access(args[0]); err != nil {
					return err
				}
			}
			if a, err = addAccess.apply(fs, a); err != nil {
				return err
			}
			return ms.SetAccess(args[0], a)
		},
	})
	register(&command{
		name: "repo rm", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "remove a mirror (refused while workspaces use it)",
		help: `Removes ROOT/mirrors/NAME.git, its broken copies and who may use it. Refused
while any workspace is of the repository: remove them first (gitfs ws rm).
Snapshots made from it keep serving what uses them (their packs are hard
links); gc drops them once unused. The name may then be added again.

Example:
  gitfs repo rm demo`,
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if err := mirror.ValidateName(args[0]); err != nil {
				return err
			}
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			users, err := workspace.ByRepo(e.root)
			if err != nil {
				return err
			}
			if ws := users[args[0]]; len(ws) > 0 {
				return fmt.Errorf("repository %s is used by workspace(s) %s: remove them first (gitfs ws rm NAME)", args[0], strings.Join(ws, ", "))
			}
			return ms.Remove(ctx, args[0])
		},
	})
	var access accessFlags
	register(&command{
		name: "repo access", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "show or change who may use a repository through the mount",
		help: `Without flags, prints the repository's owner, group and whether it is public.
Its owner and root may create workspaces of it and read MOUNT/@NAME; so may
the members of its group, and every local user if it is public. Workspaces
already created keep the owner and mode they were made with.

Examples:
  gitfs repo access demo
  sudo gitfs repo access demo --group builders
  sudo gitfs repo access demo --public=false --no-group`,
		flags: access.register,
		run: func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			a, err := ms.Access(args[0])
			if err != nil {
				return err
			}
			if access.changed(fs) {
				if a, err = access.apply(fs, a); err != nil {
					return err
				}
				if err := ms.SetAccess(args[0], a); err != nil {
					return err
				}
			}
			fmt.Fprintln(e.stdout, describeAccess(a))
			return nil
		},
	})
	register(&command{
		name: "repo fetch", args: "NAME", minArgs: 1, maxArgs: 1,
		summary: "fetch new commits into a mirror; concurrent fetches coalesce",
		help: `A fetch started while another fetch of the same mirror runs (in any process)
waits for that one and reports its result instead of fetching again. A failed
fetch leaves the mirror as it was. A mirror found broken is moved aside and
cloned again from its URL.

Example:
  gitfs repo fetch demo`,
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			if err := mirror.ValidateName(args[0]); err != nil {
				return err
			}
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			ms.SetProgress(e.progress())
			res, err := ms.Fetch(ctx, args[0])
			if err == nil && res.Coalesced {
				if w := e.progress(); w != nil {
					fmt.Fprintf(w, "gitfs repo fetch: took the result of a fetch of %s already running\n", args[0])
				}
			}
			return err
		},
	})
	var listJSON bool
	register(&command{
		name: "repo list", maxArgs: 0,
		summary: "list mirrors: NAME URL LAST-FETCH LAST-ERROR",
		help: `LAST-FETCH is the last fetch that worked (or the clone); LAST-ERROR why the
last fetch failed, if it did (a fetch that works again clears it).

Examples:
  gitfs repo list
  gitfs repo list --json`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&listJSON, "json", false, "print the mirrors as JSON")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			ms, err := e.openMirrors()
			if err != nil {
				return err
			}
			infos, err := ms.List(ctx)
			if err != nil {
				return err
			}
			if listJSON {
				if infos == nil {
					infos = []mirror.Info{}
				}
				return writeJSON(e.stdout, infos)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tURL\tLAST-FETCH\tLAST-ERROR")
			for _, i := range infos {
				last := "never"
				if !i.LastFetch.IsZero() {
					last = i.LastFetch.Local().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", i.Name, i.URL, last, orDash(i.LastError))
			}
			return tw.Flush()
		},
	})
	register(&command{
		name: "rev-parse", args: "REPO REV", minArgs: 2, maxArgs: 2,
		summary: "print the 40-hex commit a branch, tag, HEAD or (abbreviated) sha names",
		help: `Example:
  gitfs rev-parse demo main
  gitfs rev-parse demo v1.2`,
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, args []string) error {
			commit, err := e.resolve(ctx, args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, commit)
			return nil
		},
	})
	var gcOpts housekeeping.Options
	var gcJSON bool
	gcBlobs := "20G"
	register(&command{
		name: "gc", maxArgs: 0,
		summary: "drop snapshots no one uses, stale locks and broken copies, then git gc each mirror",
		help: `A snapshot is kept while any process holds a lease on it (a checkout in
progress, a mounted workspace, an export), any workspace is based on it, or a
checkout --git borrows its objects. Without --snapshot-ttl every other
snapshot goes; with it, those used (leased) within the TTL stay too, so that
the next checkout of a recent commit finds its snapshot.

Also removed: lock files of snapshots and mirrors that are gone (unheld ones
only), markers of verified packs no snapshot has, mirror copies that a
repair moved aside and that are older than --broken-ttl, and what
interrupted commands left. Then git gc runs on each mirror.

Then ROOT/blobs, where every blob is inflated once for all commits, is
trimmed to --blob-cache-size, least recently used first; no blob of a
snapshot in use goes. --contents removes the per-commit contents files that
older versions of gitfs left in snapshots.

'gitfs serve --gc-interval' runs the same on a timer.

Examples:
  gitfs gc
  gitfs gc --snapshot-ttl 24h
  gitfs gc --contents`,
		flags: func(fs *pflag.FlagSet) {
			fs.DurationVar(&gcOpts.SnapshotTTL, "snapshot-ttl", 0, "keep snapshots used within this long (e.g. 24h); 0: drop every unused one")
			fs.DurationVar(&gcOpts.BrokenTTL, "broken-ttl", housekeeping.DefaultBrokenTTL, "remove broken mirror copies older than this")
			fs.BoolVar(&gcOpts.DropContents, "contents", false, "also remove the per-commit contents files older versions left")
			fs.BoolVar(&gcJSON, "json", false, "print what was removed as JSON")
			fs.StringVar(&gcBlobs, "blob-cache-size", gcBlobs, "trim ROOT/blobs (every blob inflated once, for all commits) to this many bytes (K, M, G, T), least recently used first; blobs of snapshots in use stay")
		},
		run: func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
			if gcOpts.SnapshotTTL < 0 || gcOpts.BrokenTTL < 0 {
				return usageError{"--snapshot-ttl and --broken-ttl must not be negative"}
			}
			limit, err := blobstore.ParseSize(gcBlobs)
			if err != nil {
				return usageError{"--blob-cache-size: " + err.Error()}
			}
			gcBlobLimit = limit
			return runGC(ctx, e, gcOpts, gcJSON)
		},
	})
}

// resolve turns REV into a commit of REPO. A full sha whose snapshot exists
// resolves even when the mirror no longer has it (force-pushed away and
// collected): the snapshot pinned its objects.
func (e *env) resolve(ctx context.Context, repo, rev string) (string, error) {
	if err := mirror.ValidateName(repo); err != nil {
		return "", err
	}
	ms, err := e.openMirrors()
	if err != nil {
		return "", err
	}
	m, err := ms.Get(ctx, repo)
	if err != nil {
		return "", err
	}
	commit, err := snapshot.Resolve(ctx, e.root, m, rev)
	if errors.Is(err, mirror.ErrUnknownRev) {
		return "", fmt.Errorf("%w (try 'gitfs repo fetch %s' if it is new)", err, repo)
	}
	return commit, err
}

// gcBlobLimit is gc's --blob-cache-size: the snapshot store's GC trims the
// blob store to it.
var gcBlobLimit int64 = snapshot.DefaultBlobLimit

func runGC(ctx context.Context, e *env, opts housekeeping.Options, asJSON bool) error {
	st, err := e.openSnapshots()
	if err != nil {
		return err
	}
	st.SetBlobLimit(gcBlobLimit)
	opts.Progress, opts.Log = e.progress(), e.log
	r, err := housekeeping.GC(ctx, e.root, e.mirrors, st, opts)
	if asJSON && err == nil {
		return writeJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "removed %d snapshot(s)\n", len(r.Snapshots))
	if opts.DropContents {
		fmt.Fprintf(e.stdout, "removed contents files: %.1f MiB freed\n", float64(r.ContentsFreed)/(1<<20))
	}
	if r.Locks+r.Markers+len(r.Broken) > 0 {
		fmt.Fprintf(e.stdout, "removed %d stale lock file(s), %d verified-pack marker(s), %d broken mirror copy(ies)\n", r.Locks, r.Markers, len(r.Broken))
	}
	return err
}

// accessFlags are the flags that set a repository's Access.
type accessFlags struct {
	owner, group string
	noGroup      bool
	public       bool
}

func (f *accessFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.owner, "owner", "", "user (name or uid) who owns the repository (default: you)")
	fs.StringVar(&f.group, "group", "", "group (name or gid) whose members may use it too")
	fs.BoolVar(&f.noGroup, "no-group", false, "remove the group")
	fs.BoolVar(&f.public, "public", false, "let every local user use it")
}

func (f *accessFlags) changed(fs *pflag.FlagSet) bool {
	for _, n := range []string{"owner", "group", "no-group", "public"} {
		if fs.Changed(n) {
			return true
		}
	}
	return false
}

// apply returns a changed by the flags given.
func (f *accessFlags) apply(fs *pflag.FlagSet, a mirror.Access) (mirror.Access, error) {
	if fs.Changed("owner") {
		uid, err := lookupID(f.owner, func(s string) (string, error) {
			u, err := user.Lookup(s)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		})
		if err != nil {
			return a, usageError{fmt.Sprintf("--owner %s: %v", f.owner, err)}
		}
		a.Owner = uid
	}
	if fs.Changed("group") {
		gid, err := lookupID(f.group, func(s string) (string, error) {
			g, err := user.LookupGroup(s)
			if err != nil {
				return "", err
			}
			return g.Gid, nil
		})
		if err != nil {
			return a, usageError{fmt.Sprintf("--group %s: %v", f.group, err)}
		}
		a.Group = &gid
	}
	if f.noGroup {
		a.Group = nil
	}
	if fs.Changed("public") {
		a.Public = f.public
	}
	return a, nil
}

// lookupID accepts a number or a name that lookup turns into one.
func lookupID(s string, lookup func(string) (string, error)) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	id, err := lookup(s)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return 0, err
	}
	return uint32(n), nil
}

func describeAccess(a mirror.Access) string {
	owner := strconv.FormatUint(uint64(a.Owner), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username + " (" + owner + ")"
	}
	group := "none"
	if a.Group != nil {
		group = strconv.FormatUint(uint64(*a.Group), 10)
		if g, err := user.LookupGroupId(group); err == nil {
			group = g.Name + " (" + group + ")"
		}
	}
	return fmt.Sprintf("owner %s, group %s, public %t", owner, group, a.Public)
}
