//go:build linux

package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/gitfs/gitfs/snapshot"
)

// inflateJob is a snapshot to inflate in the background.
type inflateJob struct{ repo, commit string }

// queueInflate asks for commit's snapshot to be inflated in the background
// (Config.Inflate); it never blocks, and a full queue drops the job (the
// snapshot is inflated by its next checkout instead).
func (d *Daemon) queueInflate(repo, commit string) {
	if d.inflateq == nil {
		return
	}
	select {
	case d.inflateq <- inflateJob{repo, commit}:
	default:
		d.cfg.Log.Info("background inflation queue full: skipped", "commit", commit)
	}
}

// inflateLoop inflates queued snapshots one at a time with one worker, so
// it takes at most one core from the workspaces' readers.
func (d *Daemon) inflateLoop(ctx context.Context) {
	for {
		var j inflateJob
		select {
		case <-ctx.Done():
			return
		case j = <-d.inflateq:
		}
		snap, release, err := d.cfg.Snapshots.Get(ctx, j.repo, j.commit)
		if err != nil {
			if ctx.Err() == nil {
				d.cfg.Log.Warn("background inflation: snapshot unavailable", "commit", j.commit, "err", err)
			}
			continue
		}
		if c, err := snap.Contents(); err == nil {
			c.Close()
			release()
			continue
		}
		start := time.Now()
		c, err := snap.Inflate(ctx, snapshot.InflateOptions{Workers: 1})
		release()
		switch {
		case err == nil:
			c.Close()
			d.cfg.Log.Info("snapshot inflated in the background", "commit", j.commit, "took", time.Since(start).Round(time.Millisecond))
		case errors.Is(err, snapshot.ErrContentsBusy) || ctx.Err() != nil:
		default:
			d.cfg.Log.Warn("background inflation failed", "commit", j.commit, "err", err)
		}
	}
}
