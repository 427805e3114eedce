package snapshot

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dieWithParent makes a git child die when gitfs does (kill -9) instead of
// filling on unsupervised (Pdeathsig). The signal follows the thread that
// forked, so the caller keeps its goroutine on its thread until git has
// exited: it returns true.
func dieWithParent(a *syscall.SysProcAttr) bool {
	a.Pdeathsig = syscall.SIGKILL
	return true
}

// growPipe asks for a pipe of n bytes; a smaller one only costs speed, so
// a refusal is ignored.
func growPipe(f *os.File, n int) {
	if c, err := f.SyscallConn(); err == nil {
		c.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n) })
	}
}
