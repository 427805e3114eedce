package materialize

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress is shown only for runs long enough to need it, and redrawn at
// most a few times a second so it never costs measurable time.
const (
	progressDelay    = time.Second
	progressInterval = 250 * time.Millisecond
)

type progress struct {
	out   io.Writer
	total int
	files *atomic.Int64
	bytes *atomic.Int64
	start time.Time
	// inflated counts bytes inflated into the snapshot's contents file,
	// shown while phaseName is "inflating".
	inflated  *atomic.Int64
	phaseName atomic.Pointer[string]
	done      chan struct{}
	wg        sync.WaitGroup
	shown     bool
}

// startProgress reports files and bytes written to out until stop; nil
// out reports nothing.
func startProgress(out io.Writer, total int, files, bytes *atomic.Int64) *progress {
	p := &progress{out: out, total: total, files: files, bytes: bytes, start: time.Now(),
		inflated: new(atomic.Int64), done: make(chan struct{})}
	if out == nil {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-time.After(progressDelay):
		case <-p.done:
			return
		}
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			p.draw("\r")
			select {
			case <-t.C:
			case <-p.done:
				return
			}
		}
	}()
	return p
}

// phase names what the run is doing before it writes files; "" is writing.
func (p *progress) phase(name string) { p.phaseName.Store(&name) }

func (p *progress) draw(prefix string) {
	p.shown = true
	if ph := p.phaseName.Load(); ph != nil && *ph != "" {
		fmt.Fprintf(p.out, "%sgitfs checkout: %s, %.1f MiB, %s\x1b[K", prefix, *ph,
			float64(p.inflated.Load())/(1<<20), time.Since(p.start).Round(100*time.Millisecond))
		return
	}
	fmt.Fprintf(p.out, "%sgitfs checkout: %d/%d files, %.1f MiB, %s\x1b[K", prefix,
		p.files.Load(), p.total, float64(p.bytes.Load())/(1<<20), time.Since(p.start).Round(100*time.Millisecond))
}

// stop ends the display; a shown line is completed, with a final count
// when the run succeeded.
func (p *progress) stop(ok bool) {
	if p.out == nil {
		return
	}
	close(p.done)
	p.wg.Wait()
	if !p.shown {
		return
	}
	if ok {
		p.draw("\r")
		fmt.Fprintln(p.out, ", done")
	} else {
		fmt.Fprintln(p.out)
	}
}
