//go:build linux

package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareRootPath: PrepareRoot refuses a root reached through any
// directory or symlink another user could change, not only through the
// directories of the path the links resolve to: a symlink on the way that
// another user owns (they can point it elsewhere whenever they like), or
// that sits in a directory they may write. Such a root would let them move
// the root daemon's mirrors, snapshots and socket under its feet. gitfs
// doctor's check says the same.
func TestPrepareRootPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes files of another user")
	}
	const other = 65534
	base := t.TempDir()
	mk := func(p string, mode os.FileMode, uid int) string {
		t.Helper()
		p = filepath.Join(base, p)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := func(target, p string, uid int) string {
		t.Helper()
		p = filepath.Join(base, p)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(p, uid, uid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	safe := mk("safe", 0o755, 0)
	mk("open", 0o777, 0)                          // anyone may rename what is in it
	mk("sticky", 0o777|os.ModeSticky, 0)          // like /tmp
	mk("stickyother", 0o777|os.ModeSticky, other) // sticky, but its owner may do anything in it
	mk("theirs", 0o755, other)                    // another user's directory
	mk("grp", 0o775, 0)                           // writable by its group
	link(safe, "theirlink", other)                // another user's symlink to a safe place
	link(safe, "open/link", 0)                    // root's symlink in a directory anyone may write
	link(safe, "sticky/link", 0)                  // root's symlink in a sticky directory: safe
	link(safe, "safe-link", 0)                    // root's symlink in a safe directory: safe
	link("../open/sub", "safe/viaopen", 0)        // a safe link that leads through an open directory
	link("../theirlink", "safe/chain", 0)         // a safe link to another user's link
	link(filepath.Join(base, "theirs"), "safe/totheirs", 0)
	mk("open/sub", 0o755, 0)
	for _, c := range []struct {
		root string
		bad  string // "" if fine, else what the error must say
	}{
		{"safe/r1", ""},
		{"safe-link/r2", ""},
		{"sticky/link/r3", ""},
		{"sticky/r4", ""},
		{"theirlink/r5", "uid 65534"},
		{"open/link/r6", "writable by other users"},
		{"safe/viaopen/r7", "writable by other users"},
		{"safe/chain/r8", "uid 65534"},
		{"safe/totheirs/r9", "uid 65534"},
		{"theirs/r10", "uid 65534"},
		{"stickyother/r11", "uid 65534"},
		{"grp/r12", "writable by other users"},
		{"theirlink", "uid 65534"}, // the root itself is another user's link
	} {
		root := filepath.Join(base, c.root)
		// gitfs doctor applies the same rules, changing nothing.
		if chk := checkRootDir(root); (chk[0].Status == "fail") != (c.bad != "") {
			t.Errorf("doctor's check of %s: %+v", c.root, chk)
		}
		err := PrepareRoot(root)
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("PrepareRoot(%s): %v", c.root, err)
		case c.bad != "" && err == nil:
			t.Errorf("PrepareRoot(%s) accepted a root another user could redirect", c.root)
		case c.bad != "" && !strings.Contains(err.Error(), c.bad):
			t.Errorf("PrepareRoot(%s): %v, want it to say %q", c.root, err, c.bad)
		}
		if c.bad != "" {
			// Nothing was made on the way to a refused root.
			if _, err := os.Lstat(filepath.Join(safe, filepath.Base(c.root))); err == nil && c.root != "theirlink" {
				t.Errorf("PrepareRoot(%s) made %s through the link", c.root, filepath.Join(safe, filepath.Base(c.root)))
			}
		}
	}
}
