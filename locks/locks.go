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
	for {
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
		if stillNamed(f, path) {
			return &File{f: f}, nil
		}
		f.Close() // removed by RemoveUnheld while we opened it: open the new one
	}
}

// stillNamed reports whether path still names the file f has open. A lock
// file may be removed (RemoveUnheld) while its lock is held; whoever
// opened it before that and gets the lock after holds a lock on a file no
// one else will ever open, and must take the lock again on the file path
// names now. With this check, removing a lock file under its own exclusive
// lock is safe.
func stillNamed(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// RemoveUnheld removes the lock file path if no one holds its lock,
// reporting whether it did: housekeeping for lock files of things that are
// gone (snapshots collected, mirrors removed). The file is unlinked while
// its exclusive lock is held, so no process can be holding it then, and
// every taker checks that the file it locked is still the one path names.
func RemoveUnheld(path string) (bool, error) {
	l, err := TryExclusive(path)
	if errors.Is(err, ErrWouldBlock) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer l.Unlock()
	if err := os.Remove(path); err != nil {
		return false, fmt.Errorf("remove lock %s: %w", path, err)
	}
	return true, nil
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
			if stillNamed(f, path) {
				return &File{f: f}, nil
			}
			// Removed while we waited (RemoveUnheld): lock the file
			// path names now.
			f.Close()
			if f, err = openLockFile(path); err != nil {
				return nil, err
			}
			continue
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
