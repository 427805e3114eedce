package daemon

import (
	"context"
	"time"
)

// maxBackoff caps how long a failing mirror waits between fetch attempts.
const maxBackoff = time.Hour

// fetchLoop fetches every mirror each interval, coalesced with manual
// `repo fetch`. A failing mirror backs off exponentially; failures are
// logged and never remove anything. After a fetch, merge workspaces whose
// base or head moved get their new merge snapshot built ahead of time, but
// no workspace is switched: only `ws update` does that.
func (d *Daemon) fetchLoop(ctx context.Context) {
	type backoff struct {
		failures int
		until    time.Time
	}
	state := map[string]*backoff{}
	timer := time.NewTimer(d.cfg.FetchInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		infos, err := d.cfg.Mirrors.List(ctx)
		if err != nil {
			d.cfg.Log.Warn("background fetch: cannot list mirrors", "err", err)
		}
		for _, in := range infos {
			b := state[in.Name]
			if b == nil {
				b = &backoff{}
				state[in.Name] = b
			}
			if time.Now().Before(b.until) {
				continue
			}
			if _, err := d.cfg.Mirrors.Fetch(ctx, in.Name); err != nil {
				if ctx.Err() != nil {
					return
				}
				b.failures++
				wait := d.cfg.FetchInterval << min(b.failures, 10)
				if wait > maxBackoff || wait <= 0 {
					wait = maxBackoff
				}
				b.until = time.Now().Add(wait)
				d.cfg.Log.Warn("background fetch failed", "repo", in.Name, "err", err, "failures", b.failures, "retry_in", wait)
				continue
			}
			b.failures, b.until = 0, time.Time{}
			d.precomputeMerges(ctx, in.Name)
		}
		timer.Reset(d.cfg.FetchInterval)
	}
}

func (d *Daemon) precomputeMerges(ctx context.Context, repo string) {
	for _, w := range d.fs.List() {
		if w.Repo != repo || w.MergeInto == "" {
			continue
		}
		spec, err := d.spec(ctx, repo, w.Rev, w.MergeInto)
		if err != nil {
			d.cfg.Log.Info("background merge not precomputed", "workspace", w.Name, "err", err)
			continue
		}
		if spec.Commit == w.Commit {
			continue
		}
		_, release, err := d.cfg.Snapshots.Get(ctx, repo, spec.Commit)
		if err != nil {
			d.cfg.Log.Warn("background merge snapshot failed", "workspace", w.Name, "err", err)
			continue
		}
		release()
		d.cfg.Log.Info("merge precomputed: 'gitfs ws update' switches to it", "workspace", w.Name, "commit", spec.Commit)
		d.queueInflate(repo, spec.Commit)
	}
}
