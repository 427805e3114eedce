package snapshot

import "syscall"

// dieWithParent makes a git child die when gitfs does (kill -9) instead of
// filling on unsupervised (Pdeathsig). The signal follows the thread that
// forked, so the caller keeps its goroutine on its thread until git has
// exited: it returns true.
func dieWithParent(a *syscall.SysProcAttr) bool {
	a.Pdeathsig = syscall.SIGKILL
	return true
}
