//go:build !linux

package integration

import "errors"

// See sys_linux_test.go: these tests run on Linux only; elsewhere they
// only build.

func detachMount(string) error { return errors.New("unmount: Linux only") }

// Unused off Linux: the tests that switch a thread's user need root there.
const (
	sysSetresuid = 0
	sysSetresgid = 0
)

// runHelper: the helper processes the Linux tests start exist only there.
func runHelper() (int, bool) { return 0, false }
