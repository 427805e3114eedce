//go:build linux

package fs

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
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
//
// One user's requests take at most half the slots (root's are not
// counted: the host's owner): a user listing thousands of refs waits on
// themselves, and every other user still finds slots free.
type browseLimit struct {
	slots   chan struct{}
	perUser int
	waiting atomic.Int64 // requests waiting for a slot (tests, metrics)

	// mu guards users, each user's share of the slots (a channel with
	// perUser places) and how many requests hold or wait for it; a leaf.
	mu    sync.Mutex
	users map[uint32]*userShare
}

type userShare struct {
	places chan struct{}
	refs   int
}

func newBrowseLimit() *browseLimit {
	n := max(4, runtime.NumCPU())
	return &browseLimit{slots: make(chan struct{}, n), perUser: n / 2, users: map[uint32]*userShare{}}
}

// acquire takes a slot, and a place of the caller's share first, waiting
// until both are free or ctx (the kernel's request) is interrupted:
// EINTR. release gives them back.
func (l *browseLimit) acquire(ctx context.Context) (release func(), e syscall.Errno) {
	share := l.share(ctx)
	if share != nil {
		if e := l.wait(ctx, share.places); e != 0 {
			l.unshare(ctx, share)
			return nil, e
		}
	}
	if e := l.wait(ctx, l.slots); e != 0 {
		if share != nil {
			<-share.places
			l.unshare(ctx, share)
		}
		return nil, e
	}
	return func() {
		<-l.slots
		if share != nil {
			<-share.places
			l.unshare(ctx, share)
		}
	}, 0
}

// wait puts a token into c, waiting until there is room or ctx ends.
func (l *browseLimit) wait(ctx context.Context, c chan struct{}) syscall.Errno {
	select {
	case c <- struct{}{}:
		return 0
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case c <- struct{}{}:
		return 0
	case <-ctx.Done():
		return syscall.EINTR
	}
}

// share is the share of the user the kernel's request ctx is for, held
// (unshare gives it back); nil for root, and for a request that names no
// user.
func (l *browseLimit) share(ctx context.Context) *userShare {
	uid, ok := callerUID(ctx)
	if !ok || uid == 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.users[uid]
	if s == nil {
		s = &userShare{places: make(chan struct{}, l.perUser)}
		l.users[uid] = s
	}
	s.refs++
	return s
}

func (l *browseLimit) unshare(ctx context.Context, s *userShare) {
	uid, _ := callerUID(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(l.users, uid)
	}
}

// callerUID is the uid of the process the kernel's request ctx is for.
func callerUID(ctx context.Context) (uint32, bool) {
	if c, ok := ctx.(*fuse.Context); ok {
		return c.Caller.Uid, true
	}
	return 0, false
}
