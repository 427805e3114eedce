//go:build linux

package fs

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
)

// Browse paths do real work on a lookup: resolving a ref or commit id
// (git processes), listing a repository's refs, and getting a snapshot on
// the first read inside one (building it: pinning packs, verifying every
// tree). One user running `ls -d @repo/heads/*/.` or `find @repo/tags` over
// thousands of refs started one of each per kernel request at once,
// thousands of git processes and builds that starved every user of the
// host's CPU and the daemon of descriptors. browseLimit lets at most
// max(4, NumCPU) of them run at once across the daemon.
//
// Requests over the bound wait, interruptibly: a lookup that failed with
// EAGAIN or EBUSY would fail ls, find, diff -r and git alike (none retries
// a stat), for a bound that is only about pace; waiting costs the caller a
// blocked thread and the daemon a goroutine, both of which the kernel's
// request already cost. A waiter that the kernel interrupts (the caller
// got a signal: Ctrl-C) answers EINTR and has started nothing; once a
// request holds a slot it runs detached (detach), as before.
type browseLimit struct {
	slots   chan struct{}
	waiting atomic.Int64 // requests waiting for a slot (tests, metrics)
}

func newBrowseLimit() *browseLimit {
	return &browseLimit{slots: make(chan struct{}, max(4, runtime.NumCPU()))}
}

// acquire takes a slot, waiting until one is free or ctx (the kernel's
// request) is interrupted: EINTR. release gives it back.
func (l *browseLimit) acquire(ctx context.Context) (release func(), e syscall.Errno) {
	select {
	case l.slots <- struct{}{}:
		return l.release, 0
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.slots <- struct{}{}:
		return l.release, 0
	case <-ctx.Done():
		return nil, syscall.EINTR
	}
}

func (l *browseLimit) release() { <-l.slots }
