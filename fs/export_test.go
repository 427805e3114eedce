//go:build linux

package fs

import (
	"context"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// ForgetThenLookup plays a lookup that took the browse root of path
// ("@repo/tags/v1") from the registry just before the kernel forgot it:
// the root's OnForget runs, then the kernel, holding the root again, asks
// it for name. It returns the lookup's errno, or ENOENT if no root of
// path is registered.
func ForgetThenLookup(f *FS, path, name string) syscall.Errno {
	f.mu.Lock()
	var r *browseRootNode
	for _, v := range f.browse {
		if v.name == path {
			r = v.browse
		}
	}
	f.mu.Unlock()
	if r == nil {
		return syscall.ENOENT
	}
	r.OnForget()
	var out fuse.EntryOut
	_, e := r.Lookup(context.Background(), strings.TrimPrefix(name, "/"), &out)
	return e
}
