package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
	"github.com/gitfs/gitfs/housekeeping"
	"github.com/gitfs/gitfs/internal/blobstore"
)

func init() {
	var mountpoint, metricsAddr string
	var fetchInterval, gcInterval time.Duration
	var hk housekeeping.Options
	var passthrough, inflate bool
	register(&command{
		name: "serve", maxArgs: 0,
		summary: "run the daemon: mount workspaces and browse paths, serve the control socket",
		help: `Runs in the foreground until SIGTERM or Ctrl-C, which unmount cleanly. Every
workspace under ROOT/workspaces comes back with its changes, also after a crash.
The 'ws' commands talk to it over ROOT/gitfs.sock (HTTP+JSON: curl works too).

Inside the mount:
  MOUNT/NAME/                      a workspace (writable, copy-on-write)
  MOUNT/@REPO/HEAD/                read-only browse paths, resolved on lookup
  MOUNT/@REPO/heads/BRANCH/
  MOUNT/@REPO/tags/TAG/
  MOUNT/@REPO/commits/SHA/

A mount point left dead by a daemon that crashed is detached and mounted
again (logged); a live mount there is refused. If the mount goes away while
serving (its FUSE connection aborted, or unmounted by someone else), serve
exits non-zero, so that a supervisor restarts it.

--gc-interval runs what 'gitfs gc' does on a timer (with --snapshot-ttl:
keeping snapshots used within it); it never removes a snapshot a mounted
workspace, a lease or a checkout --git holds.

--metrics-addr serves Prometheus metrics at http://ADDR/metrics (FUSE
requests by op with latency histograms, blob reads by source, cache hits,
files pushed into the page cache, snapshots, workspaces, leases, fetches,
the materializer's files/s); they
name no repository or user, but bind to 127.0.0.1 unless the network may
see them. 'gitfs stats' prints the same numbers from the socket.

Example:
  gitfs serve --mountpoint /mnt/gitfs --fetch-interval 5m --metrics-addr 127.0.0.1:9488 &
  gitfs ws create job1 --repo demo --rev main`,
		flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&mountpoint, "mountpoint", "", "directory to mount on (created if missing)")
			fs.DurationVar(&fetchInterval, "fetch-interval", 0, "fetch every mirror this often in the background (0: never)")
			fs.BoolVar(&passthrough, "passthrough", true, "with --open-handles, let the kernel read and write upper-layer files directly (FUSE passthrough)")
			fs.StringVar(&serveBlobCacheSize, "blob-cache-size", "20G", "bound of ROOT/blobs, every blob inflated once for all commits (K, M, G, T); trimmed least recently used first, never a blob of a snapshot in use")
			fs.BoolVar(&serveOpenHandles, "open-handles", false, "have the kernel ask the daemon at every open (OPEN, RELEASE): allows passthrough, so writes to changed files skip the daemon (4 KiB writes about twice as fast here), but a warm read of a tree costs two round trips per file (default: no-open mode, a warm read costs none)")
			fs.BoolVar(&serveIOURing, "io-uring", false, "serve requests through FUSE over io_uring (Linux >= 6.14, root, the fuse module's enable_uring set: echo 1 > /sys/module/fuse/parameters/enable_uring), about half the cost of a round trip through /dev/fuse; experimental: 16 requests per CPU at once, so many slow browse-path lookups (snapshot builds) stall other requests on that CPU; without the kernel's offer serves through /dev/fuse")
			fs.DurationVar(&gcInterval, "gc-interval", 0, "run what 'gitfs gc' does this often (e.g. 1h; 0: never)")
			fs.DurationVar(&hk.SnapshotTTL, "snapshot-ttl", 0, "with --gc-interval: keep snapshots used within this long (0: drop every unused one)")
			fs.BoolVar(&hk.NoMirrorGC, "gc-no-mirrors", false, "with --gc-interval: skip git gc of the mirrors")
			fs.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9488; port 0 picks one)")
			fs.StringVar(&serveBrowseTimes, "browse-file-times", "content", "what a browse path's file shows as its times: content (derived from its blob; a file two tags hold unchanged is then one inode, which diff -r skips without reading) or commit (its commit's time, as git archive gives; each commit's files are its own, and diff -r reads them all)")
			fs.StringVar(&serveFSMonitor, "fsmonitor", "auto", "name gitfs as git's fsmonitor in workspaces, so git status stats only what changed: auto (with git >= 2.43: older git's 'git diff COMMIT' can report phantom deletions with any fsmonitor), on, off")
			fs.StringVar(&serveCPUProfile, "cpu-profile", "", "write a CPU profile of the daemon to this file until it stops (go tool pprof reads it)")
			fs.StringVar(&serveHeapProfile, "heap-profile", "", "write a profile of the daemon's heap to this file when it stops (go tool pprof reads it)")
			fs.BoolVar(&inflate, "inflate", false, "also fill the blob store for each workspace's commit from a queue of its own (the daemon already fills it for every snapshot it leases)")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			if serveFSMonitor != "auto" && serveFSMonitor != "on" && serveFSMonitor != "off" {
				return usageError{"--fsmonitor: use auto, on or off"}
			}
			if serveBrowseTimes != "content" && serveBrowseTimes != "commit" {
				return usageError{"--browse-file-times: use content or commit"}
			}
			if mountpoint == "" {
				return usageError{"--mountpoint is required"}
			}
			if gcInterval < 0 || hk.SnapshotTTL < 0 {
				return usageError{"--gc-interval and --snapshot-ttl must not be negative"}
			}
			if serveCPUProfile != "" {
				stop, err := startCPUProfile(serveCPUProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			d, err := startDaemon(e, mountpoint, fetchInterval, passthrough, inflate)
			if err != nil {
				return err
			}
			if metricsAddr != "" {
				addr, stop, err := d.ServeMetrics(metricsAddr)
				if err != nil {
					d.Stop()
					return err
				}
				defer stop()
				e.log.Info("metrics served", "url", "http://"+addr.String()+"/metrics")
				fmt.Fprintf(e.stderr, "gitfs: metrics at http://%s/metrics\n", addr)
			}
			if gcInterval > 0 {
				defer d.Housekeep(gcInterval, hk)()
			}
			fmt.Fprintf(e.stderr, "gitfs: serving %s at %s; SIGTERM or Ctrl-C unmounts\n", e.root, d.Mountpoint())
			var beforeStop func()
			if serveHeapProfile != "" {
				beforeStop = func() { writeHeapProfile(e, serveHeapProfile) }
			}
			return waitAndStop(ctx, d, beforeStop)
		},
	})
}

// startCPUProfile profiles the process into path until the returned
// function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// writeHeapProfile writes what the heap holds (after a collection) to
// path; a failure is logged, the daemon is stopping anyway.
func writeHeapProfile(e *env, path string) {
	f, err := os.Create(path)
	if err == nil {
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		e.log.Error("--heap-profile", "err", err)
	}
}

// serveCPUProfile and serveHeapProfile are serve's --cpu-profile and
// --heap-profile.
var serveCPUProfile, serveHeapProfile string

// serveOpenHandles, serveIOURing, serveBlobCacheSize, serveFSMonitor and
// serveBrowseTimes are serve's --open-handles, --io-uring,
// --blob-cache-size, --fsmonitor and --browse-file-times (quickstart
// keeps the defaults).
var (
	serveOpenHandles   bool
	serveIOURing       bool
	serveBlobCacheSize = "20G"
	serveFSMonitor     = "auto"
	serveBrowseTimes   = "content"
)

func startDaemon(e *env, mountpoint string, fetchInterval time.Duration, passthrough, inflate bool) (*daemon.Daemon, error) {
	// A fixed umask for what the daemon writes itself (mirrors, snapshots,
	// git's files): an inherited umask 0 would make refs and objects
	// writable by all. Modes that callers ask for through the mount are
	// set explicitly with fchmod, so this umask never masks them twice.
	syscall.Umask(0o022)
	if err := daemon.CheckFUSE(); err != nil {
		return nil, err
	}
	st, err := e.openSnapshots()
	if err != nil {
		return nil, err
	}
	limit, err := blobstore.ParseSize(serveBlobCacheSize)
	if err != nil {
		return nil, usageError{"--blob-cache-size: " + err.Error()}
	}
	// Every snapshot the daemon leases has its blobs stored in the
	// background (one worker: reads keep the rest of the machine).
	st.SetBlobLimit(limit)
	st.FillInBackground(1)
	if os.Geteuid() != 0 {
		// The kernel registers passthrough backing files for
		// CAP_SYS_ADMIN only; go-fuse would fall back silently.
		passthrough = false
	}
	return daemon.Start(daemon.Config{
		Root:              e.root,
		Mountpoint:        mountpoint,
		Mirrors:           e.mirrors,
		Snapshots:         st,
		Log:               e.log,
		FetchInterval:     fetchInterval,
		Passthrough:       passthrough,
		OpenHandles:       serveOpenHandles,
		IOURing:           serveIOURing,
		BrowseCommitTimes: serveBrowseTimes == "commit",
		FSMonitor:         serveFSMonitor,
		Inflate:           inflate,
	})
}

// waitAndStop serves until a signal arrives or the mount goes away. A
// mount that goes away unasked (its FUSE connection aborted, or unmounted
// by someone else) is a failure: the daemon exits non-zero, so that a
// supervisor (systemd's Restart=on-failure) starts it again.
//
// beforeStop, if set, runs first (while everything is still mounted).
func waitAndStop(ctx context.Context, d *daemon.Daemon, beforeStop func()) error {
	unmounted := make(chan struct{})
	go func() {
		d.Wait()
		close(unmounted)
	}()
	var gone error
	select {
	case <-ctx.Done():
	case <-unmounted:
		gone = daemon.WhyUnmounted(d.Mountpoint())
	}
	if beforeStop != nil {
		beforeStop()
	}
	if err := d.Stop(); err != nil && gone == nil {
		return fmt.Errorf("unmount: %w", err)
	}
	return gone
}
