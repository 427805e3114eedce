// Package asuser runs file-system calls with another user's credentials.
//
// Why: the gitfs daemon runs as root and writes files for unprivileged
// callers (`gitfs ws export NAME DIR` materializes a workspace into DIR).
// Written as root, such a write would let the caller do what they could
// not do themselves: write into a directory they may not write (a 0700
// root-only one), leave root-owned files in their tree, or have a setuid
// bit exist on a root-owned file for a moment before a chown. Design
// invariant 8: what the daemon writes for a caller is written with the
// caller's permissions and owned by the caller. The kernel is the one to
// check that, not code of ours that would have to mirror its rules.
//
// How: Linux keeps a per-thread file-system uid and gid (fsuid, fsgid)
// and per-thread supplementary groups; permission checks and the owner of
// newly created inodes use them, not the effective ids. While a thread's
// fsuid is not 0 the kernel also drops CAP_CHOWN, CAP_DAC_OVERRIDE,
// CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, ... from its effective
// capabilities (and raises them again when fsuid returns to 0), so a root
// thread is checked exactly as the user would be. User.Do locks its
// goroutine to its OS thread (runtime.LockOSThread), sets that thread's
// groups, fsgid and fsuid (raw per-thread system calls: syscall.Setgroups
// would change every thread of the process, see syscall.AllThreadsSyscall),
// verifies each took effect (setfsuid and setfsgid report no error; they
// are asked again and their answers compared) and that the capabilities
// are gone, runs fn, and restores the thread in reverse order, down to its
// effective capability set. Each Do costs about six credential changes in
// the kernel (~12µs on a 2-core VM): callers wrap a small batch of
// creating calls, not each one, and never a whole long-running job.
//
// Why no other goroutine ever runs with the user's credentials:
//   - a locked thread runs only its own goroutine;
//   - new threads are cloned from the thread that asks for them, inheriting
//     its credentials, but the Go runtime starts new threads through a
//     clean "template thread" whenever the asking thread is locked
//     (LockOSThread starts that template thread before locking, while the
//     credentials are still the daemon's);
//   - if restoring fails, Do returns an error and leaves the goroutine
//     locked: the runtime never schedules another goroutine on that
//     thread, and the thread exits when its goroutine does.
//
// The flip side: goroutines that fn starts run on other threads with the
// daemon's credentials. Whatever must happen as the user must happen on
// fn's own goroutine (and whatever needs the daemon's access, such as
// reading its own 0700 directories, can be done by a goroutine fn starts,
// or before Do).
package asuser
