//go:build linux

package fs

import (
	"context"
	"runtime"
	"syscall"
	"testing"
)

// TestBrowseLimitInterrupted: a request waiting for a browse slot that
// the kernel interrupts answers EINTR, holds nothing, and waits no more; a
// freed slot goes to the next request.
func TestBrowseLimitInterrupted(t *testing.T) {
	l := newBrowseLimit()
	var held []func()
	for i := 0; i < cap(l.slots); i++ {
		done, e := l.acquire(context.Background())
		if e != 0 {
			t.Fatalf("slot %d: %v", i, e)
		}
		held = append(held, done)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan syscall.Errno)
	go func() {
		_, e := l.acquire(ctx)
		got <- e
	}()
	for l.waiting.Load() == 0 {
		runtime.Gosched() // until the request waits
	}
	cancel()
	if e := <-got; e != syscall.EINTR {
		t.Errorf("an interrupted wait answered %v, want EINTR", e)
	}
	if n := l.waiting.Load(); n != 0 {
		t.Errorf("%d still waiting", n)
	}
	held[0]()
	done, e := l.acquire(context.Background())
	if e != 0 {
		t.Fatalf("a freed slot: %v", e)
	}
	done()
	for _, d := range held[1:] {
		d()
	}
	if n := len(l.slots); n != 0 {
		t.Errorf("%d slots still held", n)
	}
}
