package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

func init() {
	var addAccess accessFlags
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

Example:
  gitfs repo add demo https://example.com/demo.git
  gitfs repo add local ./some/checkout
  sudo gitfs repo add app https://example.com/app.git --owner ci --group builders`,
		flags: addAccess.register,
		run: func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
			if err := mirror.ValidateName(args[0]); err != nil {
				return err
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
			if _, err := ms.Add(ctx, args[0], args[1]); err != nil {
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
	var dropContents bool
	register(&command{
		name: "gc", maxArgs: 0,
		summary: "drop snapshots no one uses, then let each mirror collect garbage",
		help: `A snapshot is kept while any process holds a lease on it (a checkout in
progress, a mounted workspace) or any workspace is based on it.

With --contents, the kept snapshots also lose their contents files (their
blobs inflated by a checkout, about the tree's size each); the next checkout
of each commit makes its file again.

Examples:
  gitfs gc
  gitfs gc --contents`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&dropContents, "contents", false, "also remove kept snapshots' inflated contents files")
		},
		run: func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error {
			return runGC(ctx, e, dropContents)
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

func runGC(ctx context.Context, e *env, dropContents bool) error {
	st, err := e.openSnapshots()
	if err != nil {
		return err
	}
	keep, err := workspace.Commits(e.root)
	if err != nil {
		return err
	}
	removed, err := st.GC(ctx, keep)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d snapshot(s)\n", len(removed))
	if dropContents {
		freed, err := st.DropContents()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed contents files: %.1f MiB freed\n", float64(freed)/(1<<20))
	}
	e.mirrors.CleanStale()
	infos, err := e.mirrors.List(ctx)
	if err != nil {
		return err
	}
	prog := e.progress()
	for n, i := range infos {
		if prog != nil {
			fmt.Fprintf(prog, "\rgitfs gc: git gc of mirror %s (%d/%d)\x1b[K", i.Name, n+1, len(infos))
		}
		if err := e.mirrors.GC(ctx, i.Name); err != nil {
			if prog != nil {
				fmt.Fprintln(prog)
			}
			return err
		}
	}
	if prog != nil && len(infos) > 0 {
		fmt.Fprintf(prog, "\rgitfs gc: git gc of %d mirror(s), done\x1b[K\n", len(infos))
	}
	return nil
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
