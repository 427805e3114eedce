//go:build linux

package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/asuser"
	"github.com/gitfs/gitfs/materialize"
)

// maxExportWorkers bounds ExportRequest.Workers: each worker holds a
// buffer and descriptors, and more than a few per core only contend.
const maxExportWorkers = 64

// export writes a workspace (its commit plus its changes) for the caller.
// Everything is created with the caller's credentials, so the kernel
// checks the caller's permissions and the caller owns the result; the
// target is named by a directory the caller opened itself (or, for
// callers that cannot pass one, a path opened with the caller's
// credentials), so the daemon resolves no path a caller could have laid.
func (d *Daemon) export(ctx context.Context, name string, req ExportRequest) (ExportResponse, error) {
	p, err := d.caller(ctx)
	if err != nil {
		return ExportResponse{}, err
	}
	info, err := d.find(p, name)
	if err != nil {
		return ExportResponse{}, err
	}
	workers := req.Workers
	if workers == 0 {
		workers = min(runtime.NumCPU(), maxExportWorkers)
	}
	if workers < 1 || workers > maxExportWorkers {
		return ExportResponse{}, usageError{fmt.Errorf("workers %d: use 1 to %d", req.Workers, maxExportWorkers)}
	}
	as := &asuser.User{UID: p.uid, GID: p.gid, Groups: p.groups}
	parent, target, err := d.exportTarget(p, as, req)
	if err != nil {
		return ExportResponse{}, err
	}
	defer unix.Close(parent)
	// The changes are read now, as the daemon; only writing them runs as
	// the caller.
	plan, err := d.fs.PlanExport(name)
	if err != nil {
		return ExportResponse{}, err
	}
	defer plan.Close()
	snap, release, err := d.cfg.Snapshots.Get(ctx, info.Repo, plan.Commit)
	if err != nil {
		return ExportResponse{}, err
	}
	defer release()
	start := time.Now()
	stats, err := materialize.CheckoutAt(ctx, snap, parent, target, materialize.Options{
		Workers: workers,
		As:      as,
		Finish:  plan.Apply,
		Log:     d.cfg.Log,
	})
	if err != nil {
		return ExportResponse{}, err
	}
	d.metrics.observeExport(stats.Files, stats.Bytes, time.Since(start))
	return ExportResponse{Files: stats.Files, Bytes: stats.Bytes}, nil
}

// exportTarget returns a descriptor of the directory to export into and
// the name to create there, refusing targets inside the mount: writing
// through our own mount from a request the mount may be waiting on would
// deadlock the daemon.
func (d *Daemon) exportTarget(p *peer, as *asuser.User, req ExportRequest) (int, string, error) {
	var fd int
	var name string
	switch {
	case req.DirFD != nil:
		name = req.Name
		if err := checkElement(name); err != nil {
			return -1, "", usageError{err}
		}
		got, err := p.takeFD(*req.DirFD)
		if err != nil {
			return -1, "", usageError{err}
		}
		fd = got
	case req.Dir != "":
		if !filepath.IsAbs(req.Dir) {
			return -1, "", usageError{fmt.Errorf("export directory %q must be absolute", req.Dir)}
		}
		clean := filepath.Clean(req.Dir)
		name = filepath.Base(clean)
		if err := checkElement(name); err != nil {
			return -1, "", usageError{err}
		}
		err := as.Do(func() error {
			var err error
			fd, err = unix.Open(filepath.Dir(clean), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			return err
		})
		if err != nil {
			return -1, "", usageError{fmt.Errorf("export into %s: parent directory: %w", clean, err)}
		}
	default:
		return -1, "", usageError{fmt.Errorf("export: no target directory given (dir or dir_fd)")}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("export: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, "", usageError{fmt.Errorf("export: the target's parent is not a directory")}
	}
	if d.mountDev != 0 && st.Dev == d.mountDev {
		unix.Close(fd)
		return -1, "", usageError{fmt.Errorf("export: the target is inside the gitfs mount %s: export to a directory outside it", d.cfg.Mountpoint)}
	}
	return fd, name, nil
}

// checkElement accepts one path element to create.
func checkElement(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return fmt.Errorf("export target name %q: give one directory name", name)
	}
	return nil
}
