//go:build !linux

package mirror

import "syscall"

// dieWithParent: only Linux has a parent-death signal. Elsewhere a git may
// outlive a gitfs killed with -9 (cancelling still kills its process
// group); the health check on the next open catches a mirror it left
// half-written.
func dieWithParent(*syscall.SysProcAttr) bool { return false }
