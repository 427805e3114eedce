package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/gitfs/gitfs/housekeeping"
)

// Housekeep runs housekeeping.GC (what `gitfs gc` does) every interval
// until stop is called, so that a host running the daemon for months keeps
// its disk in check without a cron job. A run that fails is logged and
// retried at the next tick; a run in progress when stop is called is
// cancelled (GC leaves nothing half-removed: every removal is a rename
// first).
func (d *Daemon) Housekeep(interval time.Duration, opts housekeeping.Options) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			opts.Log = d.cfg.Log
			start := time.Now()
			r, err := housekeeping.GC(ctx, d.cfg.Root, d.cfg.Mirrors, d.cfg.Snapshots, opts)
			if ctx.Err() != nil {
				return
			}
			d.metrics.observeGC(len(r.Snapshots), err)
			if err != nil {
				d.cfg.Log.Warn("housekeeping failed; retrying at the next interval", "err", err, "retry_in", interval)
				continue
			}
			d.cfg.Log.Info("housekeeping done", "snapshots_removed", len(r.Snapshots), "locks_removed", r.Locks,
				"markers_removed", r.Markers, "broken_copies_removed", len(r.Broken), "mirrors_collected", r.Mirrors,
				"took", time.Since(start).Round(time.Millisecond))
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
