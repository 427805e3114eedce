package integration

import "golang.org/x/sys/unix"

// The few Linux calls the shared helpers make, behind names that
// sys_other_test.go gives other systems, so that every test file builds
// for GOOS=darwin vet; the tests themselves need Linux (FUSE) and run
// only here.

// detachMount lazily unmounts mnt (MNT_DETACH).
func detachMount(mnt string) error { return unix.Unmount(mnt, unix.MNT_DETACH) }

// One thread's credentials (raw setresuid/setresgid change only the
// calling thread, not the whole process as Go's syscall.Setresuid does).
const (
	sysSetresuid = unix.SYS_SETRESUID
	sysSetresgid = unix.SYS_SETRESGID
)
