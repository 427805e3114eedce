package mirror

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Ref is one branch or tag of a mirror.
type Ref struct {
	Name   string // refs/heads/main, refs/tags/v1
	ID     string // the object it names
	Peeled string // for an annotated tag, the object it points to; else ""
}

// RefList lists the mirror's branches and tags and the branch its HEAD
// names ("" when HEAD is detached or dangling). It takes no lock: git
// reads refs atomically while a fetch updates them.
//
// The list is kept by the set and given again while the files git keeps
// refs in are as they were (refState): asking git costs two processes,
// 17 ms of a 58 ms ws update on git.git (a thousand tags), on every
// update and every new workspace's git dir.
func (m *Mirror) RefList(ctx context.Context) ([]Ref, string, error) {
	st, stOK := refState(m.Dir)
	if stOK && m.set != nil {
		if c, ok := m.set.cachedRefs(m.Name, st); ok {
			return slices.Clone(c.refs), c.head, nil
		}
	}
	refs, head, err := m.listRefs(ctx)
	if err != nil {
		return nil, "", err
	}
	if stOK && m.set != nil {
		m.set.keepRefs(m.Name, refList{state: st, refs: refs, head: head})
	}
	return slices.Clone(refs), head, nil
}

// listRefs asks git for RefList's answer.
func (m *Mirror) listRefs(ctx context.Context) ([]Ref, string, error) {
	if m.set != nil {
		m.set.refListings.Add(1)
	}
	out, err := (gitCmd{dir: m.Dir, args: []string{"for-each-ref", "--format=%(objectname) %(refname) %(*objectname)", "refs/heads/", "refs/tags/"}}).run(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s: list refs: %w", m.Name, err)
	}
	var refs []Ref
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !IsFullSHA(f[0]) {
			continue
		}
		r := Ref{Name: f[1], ID: f[0]}
		if len(f) > 2 && IsFullSHA(f[2]) {
			r.Peeled = f[2]
		}
		refs = append(refs, r)
	}
	head := ""
	if out, err := (gitCmd{dir: m.Dir, args: []string{"symbolic-ref", "-q", "HEAD"}}).run(ctx); err == nil {
		head = strings.TrimSpace(string(out))
	}
	return refs, head, nil
}

// refList is a RefList answer and the state of the ref files it was read
// from.
type refList struct {
	state string
	refs  []Ref
	head  string
}

func (s *Set) cachedRefs(name, state string) (refList, bool) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	c, ok := s.refLists[name]
	return c, ok && c.state == state
}

func (s *Set) keepRefs(name string, c refList) {
	s.refsMu.Lock()
	defer s.refsMu.Unlock()
	if s.refLists == nil {
		s.refLists = map[string]refList{}
	}
	s.refLists[name] = c
}

// refState describes every file git reads refs from in the mirror dir
// (HEAD, packed-refs, the loose refs under refs/heads and refs/tags) by
// inode, size and times, and gitfs's record of fetches: git replaces a ref
// file by renaming a new one over it, so a ref that moved shows as another
// inode, and each fetch rewrites the record. ok is false when the refs
// cannot be described (then RefList asks git).
func refState(dir string) (string, bool) {
	var b strings.Builder
	add := func(path, name string) bool {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				fmt.Fprintf(&b, "%s -\n", name)
				return true
			}
			return false
		}
		fmt.Fprintf(&b, "%s %d %d %d %d.%d %d.%d\n", name, st.Ino, st.Mode, st.Size,
			st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
		return true
	}
	for _, f := range []string{"HEAD", "packed-refs", stateFile} {
		if !add(filepath.Join(dir, f), f) {
			return "", false
		}
	}
	ok := true
	for _, sub := range []string{"refs/heads", "refs/tags"} {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			if !add(path, rel) {
				return errors.New("unreadable")
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			ok = false
		}
	}
	return b.String(), ok
}
