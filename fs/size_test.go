//go:build linux

package fs

import (
	"testing"
	"unsafe"
)

// TestNodeSize: a node is what the daemon's memory is made of (one per
// inode the kernel knows); growing it past 288 bytes moves it to the next
// allocation size class, 32 bytes more for every inode.
func TestNodeSize(t *testing.T) {
	if n := unsafe.Sizeof(node{}); n > 288 {
		t.Errorf("node is %d bytes, more than 288", n)
	}
}
