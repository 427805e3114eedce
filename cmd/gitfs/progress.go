package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Progress goes to stderr when it is a terminal and --quiet is not given;
// scripts and logs get none, only the result.

// progress is where a command shows progress, or nil for none.
func (e *env) progress() io.Writer {
	if e.quiet {
		return nil
	}
	f, ok := e.stderr.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	return f
}

// startTicker shows "gitfs WHAT: ELAPSED" on w, redrawn in place, for
// work whose progress only another process knows (the daemon's export).
// stop ends it with final (or clears the line when final is ""). A nil w
// shows nothing.
func startTicker(w io.Writer, what string) (stop func(final string)) {
	if w == nil {
		return func(string) {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "\rgitfs %s: %s\x1b[K", what, time.Since(start).Round(100*time.Millisecond))
			}
		}
	}()
	return func(final string) {
		close(done)
		wg.Wait()
		if final == "" {
			fmt.Fprint(w, "\r\x1b[K")
			return
		}
		fmt.Fprintf(w, "\rgitfs %s: %s\x1b[K\n", what, final)
	}
}
