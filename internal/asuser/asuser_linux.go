package asuser

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// noID is (uid_t)-1: setfsuid/setfsgid take it as "only tell me the
// current value", and chown as "leave it", so it is never a user.
const noID = ^uint32(0)

// fsCaps are the capabilities Linux drops from a thread's effective set
// while its fsuid is not 0. If any survives, the kernel would check
// permissions as root whatever the fsuid (SECBIT_NO_SETUID_FIXUP), and Do
// refuses to run.
const fsCaps = 1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_DAC_READ_SEARCH |
	1<<unix.CAP_FOWNER | 1<<unix.CAP_FSETID

// Do runs fn on an OS thread whose fsuid, fsgid and supplementary groups
// are u's, then restores them. A nil u runs fn directly. In a process
// that is not root, u may only be the process's own user (fn then runs
// directly, with the process's own groups); any other user is an error,
// since only root can take another user's credentials.
//
// Only fn's own goroutine runs with u's credentials: goroutines fn starts
// run with the process's. If the thread cannot be restored, Do returns an
// error and leaves the calling goroutine locked to the thread, so that no
// other goroutine ever runs there; the thread exits with the goroutine.
func (u *User) Do(fn func() error) (err error) {
	if fn == nil {
		return errors.New("asuser: no function to run")
	}
	if u == nil {
		return fn()
	}
	if u.UID == noID || u.GID == noID {
		return fmt.Errorf("asuser: uid %d gid %d: (uid_t)-1 is not a user", u.UID, u.GID)
	}
	if euid := unix.Geteuid(); euid != 0 {
		if uint32(euid) == u.UID {
			return fn()
		}
		return fmt.Errorf("asuser: cannot act as uid %d: this process runs as uid %d, and only root can write as another user", u.UID, euid)
	}

	// LockOSThread first: it also makes sure the runtime's template thread
	// exists, cloned from this thread while its credentials are still the
	// process's.
	runtime.LockOSThread()
	var st saved
	defer func() {
		// Deferred so that a panic in fn restores the thread too.
		if rerr := st.restore(); rerr != nil {
			// Stay locked: this thread must never run another goroutine.
			err = errors.Join(err, fmt.Errorf("asuser: restoring the daemon's credentials failed, the thread is retired: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	if err := st.enter(u); err != nil {
		return err
	}
	return fn()
}

// saved is what enter changed on this thread, to be put back.
type saved struct {
	groups       []int
	fsgid, fsuid int
	caps         [2]unix.CapUserData // capabilities before, when uid != 0
	setGroups    bool
	setGID       bool
	setUID       bool
	haveCaps     bool
}

// enter gives the current (locked) thread u's groups, fsgid and fsuid, in
// that order: groups and fsgid first, while fsuid 0 still carries the
// capabilities to set them, and fsuid last, which drops the file-system
// capabilities.
func (s *saved) enter(u *User) error {
	groups, err := unix.Getgroups()
	if err != nil {
		return fmt.Errorf("asuser: getgroups: %w", err)
	}
	want := make([]int, len(u.Groups))
	for i, g := range u.Groups {
		want[i] = int(g)
	}
	// unix.Setgroups is the raw system call and changes this thread only.
	if err := unix.Setgroups(want); err != nil {
		return fmt.Errorf("asuser: setgroups for uid %d: %w", u.UID, err)
	}
	s.groups, s.setGroups = groups, true

	gid := int(u.GID)
	prev, err := unix.SetfsgidRetGid(gid)
	s.fsgid, s.setGID = prev, true
	if err != nil {
		return fmt.Errorf("asuser: setfsgid(%d): %w", gid, err)
	}
	// setfsgid returns the previous value and never an error: ask again
	// and compare to learn whether it took effect.
	if cur := fsgid(); cur != gid {
		return fmt.Errorf("asuser: setfsgid(%d) did not take effect (fsgid is %d): does the process lack CAP_SETGID?", gid, cur)
	}

	uid := int(u.UID)
	if uid != 0 {
		// Returning fsuid to 0 raises the file-system capabilities from
		// the permitted set, which a daemon that had dropped some from its
		// effective set would not want: remember the set to put it back.
		if err := capget(&s.caps); err != nil {
			return fmt.Errorf("asuser: %w", err)
		}
		s.haveCaps = true
	}
	prev, err = unix.SetfsuidRetUid(uid)
	s.fsuid, s.setUID = prev, true
	if err != nil {
		return fmt.Errorf("asuser: setfsuid(%d): %w", uid, err)
	}
	if cur := fsuid(); cur != uid {
		return fmt.Errorf("asuser: setfsuid(%d) did not take effect (fsuid is %d): does the process lack CAP_SETUID?", uid, cur)
	}
	if uid != 0 {
		if err := checkCapsDropped(); err != nil {
			return fmt.Errorf("asuser: uid %d: %w", uid, err)
		}
	}
	return nil
}

// checkCapsDropped verifies that the kernel took the file-system
// capabilities from this thread when its fsuid left 0: without that, the
// files would be owned by the user but checked as root.
func checkCapsDropped() error {
	var data [2]unix.CapUserData
	if err := capget(&data); err != nil {
		return err
	}
	if kept := data[0].Effective & fsCaps; kept != 0 {
		return fmt.Errorf("the kernel kept file-system capabilities %#x with a non-root fsuid (SECBIT_NO_SETUID_FIXUP?): permission checks would be root's", kept)
	}
	return nil
}

// restore undoes enter in reverse order: fsuid first (which gives the
// capabilities back), then fsgid, then groups. Each step is verified.
func (s *saved) restore() error {
	var errs []error
	if s.setUID {
		unix.SetfsuidRetUid(s.fsuid)
		if cur := fsuid(); cur != s.fsuid {
			errs = append(errs, fmt.Errorf("setfsuid(%d): fsuid is still %d", s.fsuid, cur))
		}
	}
	if s.haveCaps && len(errs) == 0 {
		var now [2]unix.CapUserData
		if err := capget(&now); err != nil {
			errs = append(errs, err)
		} else if now != s.caps {
			if err := capset(&s.caps); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if s.setGID {
		unix.SetfsgidRetGid(s.fsgid)
		if cur := fsgid(); cur != s.fsgid {
			errs = append(errs, fmt.Errorf("setfsgid(%d): fsgid is still %d", s.fsgid, cur))
		}
	}
	if s.setGroups {
		if err := unix.Setgroups(s.groups); err != nil {
			errs = append(errs, fmt.Errorf("setgroups: %w", err))
		}
	}
	return errors.Join(errs...)
}

// capget reads the current thread's capabilities (pid 0 is this thread).
func capget(data *[2]unix.CapUserData) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	return nil
}

// capset sets the current thread's capabilities.
func capset(data *[2]unix.CapUserData) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// fsuid and fsgid read the current thread's ids: given (uid_t)-1, which
// is never valid, setfsuid and setfsgid change nothing and return the
// current value (and, unlike a call repeating the value, cost no
// credential copy in the kernel).
func fsuid() int { cur, _ := unix.SetfsuidRetUid(-1); return cur }
func fsgid() int { cur, _ := unix.SetfsgidRetGid(-1); return cur }
