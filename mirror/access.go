package mirror

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Access says which local users may use a repository through the daemon:
// create workspaces of it and read it under the mount's browse paths. A
// repository is private to its owner unless a group or everyone is let in,
// so that adding a private repository on a shared host does not publish it
// to every user of the mount.
type Access struct {
	Owner  uint32  `json:"owner"`           // uid of the user who may always use it
	Group  *uint32 `json:"group,omitempty"` // members of this gid may use it too
	Public bool    `json:"public,omitempty"`
}

// Allows reports whether a user with uid, primary gid and supplementary
// groups may use the repository. Root always may.
func (a Access) Allows(uid, gid uint32, groups []uint32) bool {
	if uid == 0 || uid == a.Owner || a.Public {
		return true
	}
	if a.Group == nil {
		return false
	}
	if gid == *a.Group {
		return true
	}
	for _, g := range groups {
		if g == *a.Group {
			return true
		}
	}
	return false
}

// Mode is the permission bits a directory showing the repository gets, so
// that the kernel's own checks (default_permissions) enforce Access for
// every path below it: 0755 public, 0750 for a group, else 0700.
func (a Access) Mode() uint32 {
	switch {
	case a.Public:
		return 0o755
	case a.Group != nil:
		return 0o750
	}
	return 0o700
}

// GID is the group such a directory belongs to: the repository's group,
// else root's.
func (a Access) GID() uint32 {
	if a.Group != nil {
		return *a.Group
	}
	return 0
}

// accessPath is where a repository's Access is kept: beside its mirror
// rather than in it, so that a mirror re-cloned after damage keeps it.
func (s *Set) accessPath(name string) string { return filepath.Join(s.dir, name+".access.json") }

// Access returns who may use repository name. A mirror added before
// access was recorded belongs to the owner of its directory alone.
func (s *Set) Access(name string) (Access, error) {
	if err := ValidateName(name); err != nil {
		return Access{}, err
	}
	b, err := os.ReadFile(s.accessPath(name))
	if err == nil {
		var a Access
		if err := json.Unmarshal(b, &a); err != nil {
			return Access{}, fmt.Errorf("repository %s: access record: %w", name, err)
		}
		return a, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Access{}, fmt.Errorf("repository %s: access record: %w", name, err)
	}
	fi, err := os.Stat(s.mirrorDir(name))
	if err != nil {
		return Access{}, notFound(name)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Access{}, fmt.Errorf("repository %s: cannot tell its owner", name)
	}
	return Access{Owner: st.Uid}, nil
}

// SetAccess records who may use repository name, atomically.
func (s *Set) SetAccess(name string, a Access) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if _, err := os.Stat(s.mirrorDir(name)); err != nil {
		return notFound(name)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.dir, "."+name+".access-*")
	if err != nil {
		return fmt.Errorf("repository %s: access record: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.accessPath(name))
	}
	if err != nil {
		return fmt.Errorf("repository %s: access record: %w", name, err)
	}
	return nil
}
