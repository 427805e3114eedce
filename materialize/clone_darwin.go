package materialize

import "golang.org/x/sys/unix"

// cloneFile: macOS clones by path (clonefile), not into an open file:
// refuse, so that the copy path runs.
func cloneFile(dst, src int) error { return unix.ENOTSUP }
