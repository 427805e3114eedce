package snapshot

import (
	"os"
	"syscall"
)

// dieWithParent: macOS has no Pdeathsig; a git left behind by a killed
// gitfs only finishes writing verified blobs.
func dieWithParent(*syscall.SysProcAttr) bool { return false }

// growPipe: macOS pipes grow by themselves.
func growPipe(*os.File, int) {}
