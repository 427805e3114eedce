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

// browseView is the registered browse view of path ("@repo/tags/v1").
func browseView(f *FS, path string) *view {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.browse {
		if v.name == path {
			return v
		}
	}
	return nil
}

// ForgetBrowseRoot plays the kernel forgetting the root of browse path
// ("@repo/tags/v1") while files below it live on elsewhere. It reports
// whether a root of path was registered.
func ForgetBrowseRoot(f *FS, path string) bool {
	v := browseView(f, path)
	if v == nil {
		return false
	}
	v.browse.OnForget()
	return true
}

// ForgetShared plays the kernel forgetting the shared file name in the
// root of browse path. It reports whether there was one.
func ForgetShared(f *FS, path, name string) bool {
	v := browseView(f, path)
	if v == nil {
		return false
	}
	ch := v.browse.GetChild(name)
	if ch == nil {
		return false
	}
	sf, ok := ch.Operations().(*sharedFile)
	if ok {
		sf.OnForget()
	}
	return ok
}

// DropInodeIO plays the kernel forgetting workspace ws's node of name (a
// file in its root) and knowing it again at once: the node keeps no
// descriptor, as one looked up anew. It reports whether there was one.
func DropInodeIO(f *FS, ws, name string) bool {
	f.mu.Lock()
	v := f.ws[ws]
	f.mu.Unlock()
	if v == nil || v.root == nil {
		return false
	}
	ch := v.root.GetChild(name)
	if ch == nil {
		return false
	}
	n, ok := ch.Operations().(*node)
	if ok {
		n.dropIO()
	}
	return ok
}

// BrowseSlots is how many browse resolutions may run at once; BrowseWaiting
// how many wait for a slot now.
func BrowseSlots(f *FS) int     { return cap(f.browsing.slots) }
func BrowseWaiting(f *FS) int64 { return f.browsing.waiting.Load() }
