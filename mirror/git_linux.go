package mirror

import "syscall"

// dieWithParent makes git die when gitfs does (kill -9) instead of
// writing on into a mirror whose lock the kernel has just released
// (Pdeathsig). The signal follows the thread that forked, so the caller
// keeps its goroutine on its thread until git has exited: it returns true.
func dieWithParent(a *syscall.SysProcAttr) bool {
	a.Pdeathsig = syscall.SIGKILL
	return true
}
