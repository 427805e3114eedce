//go:build linux

package fs

import (
	"context"
	"runtime"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
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

// TestBrowseLimitPerUser: one user's requests take at most half the
// slots, so another user's request finds one free while the first user
// waits on themselves; root's requests are not counted against a share.
func TestBrowseLimitPerUser(t *testing.T) {
	l := newBrowseLimit()
	as := func(uid uint32) context.Context {
		return &fuse.Context{Caller: fuse.Caller{Owner: fuse.Owner{Uid: uid}}, Cancel: make(chan struct{})}
	}
	var held []func()
	for i := 0; i < l.perUser; i++ {
		done, e := l.acquire(as(1000))
		if e != 0 {
			t.Fatalf("user 1000's request %d: %v", i, e)
		}
		held = append(held, done)
	}
	type answer struct {
		done func()
		e    syscall.Errno
	}
	got := make(chan answer)
	go func() {
		done, e := l.acquire(as(1000))
		got <- answer{done, e}
	}()
	for l.waiting.Load() == 0 { // until user 1000's next request waits on its share
		select {
		case a := <-got:
			a.done()
			t.Fatalf("user 1000 got more than its share of %d slots (of %d)", l.perUser, cap(l.slots))
		default:
			runtime.Gosched()
		}
	}
	done, e := l.acquire(as(1001))
	if e != 0 {
		t.Fatalf("another user: %v", e)
	}
	done()
	root, e := l.acquire(as(0))
	if e != 0 {
		t.Fatalf("root: %v", e)
	}
	root()
	held[0]()
	a := <-got
	if a.e != 0 {
		t.Fatalf("user 1000's waiting request, once one of theirs ended: %v", a.e)
	}
	a.done()
	for _, d := range held[1:] {
		d()
	}
	if n := len(l.slots); n != 0 {
		t.Errorf("%d slots still held", n)
	}
	if n := len(l.users); n != 0 {
		t.Errorf("%d users' shares left", n)
	}
}
