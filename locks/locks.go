// Package locks provides the three kinds of mutual exclusion gitfs needs:
// keyed in-process locks, cross-process file locks (flock) that the kernel
// releases when a process dies, and atomic publication of a directory built
// under a unique temporary name.
package locks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Keyed is a set of in-process mutexes addressed by name. Entries are
// reference counted and dropped when unused, so the set stays small.
type Keyed struct {
	mu    sync.Mutex // guards locks; never held while waiting for an entry
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// Lock takes the lock for key and returns its release function.
func (k *Keyed) Lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = make(map[string]*keyedEntry)
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()

	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// ErrWouldBlock is returned by the Try variants when another holder has the lock.
var ErrWouldBlock = errors.New("lock is held by another process")

// File is a held flock on a lock file. The descriptor is opened with
// O_CLOEXEC (Go's default), so git child processes never inherit it, and the
// kernel drops the lock if the process dies.
type File struct {
	f *os.File
}

// Unlock releases the lock and closes the descriptor.
func (l *File) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the only descriptor releases the flock
	l.f = nil
	return err
}

// Path is the lock file's path.
func (l *File) Path() string { return l.f.Name() }

func openLockFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Exclusive blocks until it holds an exclusive flock on path or ctx ends.
func Exclusive(ctx context.Context, path string) (*File, error) {
	return acquire(ctx, path, unix.LOCK_EX)
}

// Shared blocks until it holds a shared flock on path or ctx ends.
func Shared(ctx context.Context, path string) (*File, error) {
	return acquire(ctx, path, unix.LOCK_SH)
}

// TryExclusive takes an exclusive flock on path without waiting; it returns
// ErrWouldBlock when another open file description holds it.
func TryExclusive(path string) (*File, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrWouldBlock
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &File{f: f}, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			return err
		}
	}
}

// acquire polls with a non-blocking flock so that a cancelled context is
// honoured promptly; a blocking flock cannot be interrupted from Go.
func acquire(ctx context.Context, path string, how int) (*File, error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	delay := time.Millisecond
	for {
		err := flock(f, how|unix.LOCK_NB)
		if err == nil {
			return &File{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
