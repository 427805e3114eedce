package snapshot

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/gitfs/gitfs/internal/pack"
)

// ID is a git object id.
type ID = plumbing.Hash

// Kind is what a tree entry is.
type Kind uint8

const (
	File       Kind = iota // regular, non-executable file
	Executable             // regular file with the executable bit
	Symlink                // symbolic link; its blob is the target
	Dir                    // tree
	Gitlink                // submodule commit: shown as an empty directory
)

func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Executable:
		return "executable"
	case Symlink:
		return "symlink"
	case Dir:
		return "dir"
	case Gitlink:
		return "gitlink"
	}
	return "unknown"
}

// Entry is one name in a tree. Names are exactly as stored in git: callers
// that write to disk must validate them.
type Entry struct {
	Name string
	Kind Kind
	ID   ID
}

// ErrNotExist reports a path that is not in the snapshot's tree.
var ErrNotExist = errors.New("no such path in snapshot")

// Meta is what a snapshot records about itself in meta.json.
type Meta struct {
	Commit     string    `json:"commit"`
	Tree       string    `json:"tree"`
	Repo       string    `json:"repo"`
	CommitTime time.Time `json:"commit_time"`
	Packs      []string  `json:"packs"`
	Created    time.Time `json:"created"`
	Files      int       `json:"files"`
	Trees      int       `json:"trees"`
}

// Snapshot is an immutable, verified view of one commit. All methods are
// safe for concurrent use; results returned as slices are shared and must
// not be modified.
type Snapshot struct {
	meta  Meta
	dir   string // ROOT/snapshots/<commit>
	tree  ID
	packs *pack.Set // the pinned packs: one reader for trees, sizes and blob bytes
	store *Store
	refs  int // guarded by Store.mu

	attrs attrs // the tree's .gitattributes, read once (worktree.go)
}

// Commit is the snapshot's 40-hex commit id.
func (s *Snapshot) Commit() string { return s.meta.Commit }

// Meta returns the snapshot's metadata.
func (s *Snapshot) Meta() Meta { return s.meta }

// Root is the id of the commit's root tree.
func (s *Snapshot) Root() ID { return s.tree }

// CommitTime is the committer time, used as every unchanged file's mtime.
func (s *Snapshot) CommitTime() time.Time { return s.meta.CommitTime }

// ObjectsDir is a git objects directory holding the snapshot's pinned packs,
// fit for objects/info/alternates. Those packs are the whole mirror of the
// repository that built the snapshot (Meta().Repo), not just the commit's
// objects: hand them (as links or alternates) only to a user of that
// repository (BuiltFrom).
func (s *Snapshot) ObjectsDir() string { return filepath.Join(s.dir, "objects") }

// BuiltFrom reports whether the snapshot was built from repository repo's
// mirror. Snapshots are kept by commit alone: a commit that two
// repositories hold (a private fork of a public project, or the same tree
// committed twice) has one snapshot, made from whichever asked first. Its
// trees and blobs are the commit's, the same in both, but its packs are
// the builder's, with every object of that repository: another
// repository's user must not get them (ObjectsDir).
func (s *Snapshot) BuiltFrom(repo string) bool {
	return s.meta.Repo != "" && s.meta.Repo == repo
}

// Tree returns the entries of tree id, in git order. A tree that breaks
// the rules of names.go gives a *RefusedError (naming the entry and id) and
// is never cached: asking again decodes and refuses it again, which costs
// at most Options.MaxTreeEntries entries.
func (s *Snapshot) Tree(id ID) ([]Entry, error) {
	key := string(id[:])
	if v, ok := s.store.trees.Get(key); ok {
		return v, nil
	}
	entries, err := s.readTree(id)
	if err != nil {
		return nil, err
	}
	// Counted on the slice's capacity, not its length: decodeTree sizes it
	// from the object's size, which may overestimate.
	cost := 64 + int64(cap(entries))*48
	for _, e := range entries {
		cost += int64(len(e.Name))
	}
	s.store.trees.Set(key, entries, cost)
	return entries, nil
}

// readTree decodes tree id and validates it as it goes: every name
// (CheckName), strict git order without duplicates, and at most
// Options.MaxTreeEntries entries, so a tree bomb costs a bounded read, not
// the daemon's memory. Every tree anything reads goes through here: the
// build's verify walk refuses a bad tree before a snapshot is published,
// and snapshots published before these checks existed are covered lazily,
// tree by tree, when they are read.
func (s *Snapshot) readTree(id ID) ([]Entry, error) {
	typ, r, size, err := s.packs.Open(id)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id, err)
	}
	defer r.Close()
	if typ != pack.Tree {
		return nil, fmt.Errorf("tree %s: object is a %s", id, typ)
	}
	entries, err := decodeTree(r, size, s.store.opts.MaxTreeEntries)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			re.Tree = id
			return nil, re
		}
		return nil, fmt.Errorf("tree %s: %w", id, err)
	}
	return entries, nil
}

// minTreeEntry is the smallest encoding of one entry: a 5-digit mode, a
// space, a one-byte name, its NUL and a 20-byte id.
const minTreeEntry = 5 + 1 + 1 + 1 + 20

// decodeTree decodes a tree object's body of size bytes. Refusals come back
// as a *RefusedError whose Path is the entry's name; a malformed encoding
// as a plain error.
func decodeTree(r io.Reader, size int64, maxEntries int) ([]Entry, error) {
	// Names longer than the buffer are refused without being read whole.
	br := bufio.NewReaderSize(r, 4096)
	n := size / minTreeEntry
	if n > int64(maxEntries) {
		n = int64(maxEntries)
	}
	entries := make([]Entry, 0, n)
	var order orderCheck
	for {
		modeStr, err := br.ReadSlice(' ')
		if err == io.EOF && len(modeStr) == 0 {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("malformed tree: entry %d: mode: %w", len(entries), noEOF(err))
		}
		mode, err := filemode.New(string(modeStr[:len(modeStr)-1]))
		if err != nil {
			return nil, fmt.Errorf("malformed tree: entry %d: mode %q", len(entries), modeStr[:len(modeStr)-1])
		}
		rawName, err := br.ReadSlice(0)
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, &RefusedError{Path: string(rawName[:NameMax]) + "...", Rule: RuleNameMax}
		}
		if err != nil {
			return nil, fmt.Errorf("malformed tree: entry %d: name: %w", len(entries), noEOF(err))
		}
		name := string(rawName[:len(rawName)-1])
		var e Entry
		if _, err := io.ReadFull(br, e.ID[:]); err != nil {
			return nil, fmt.Errorf("malformed tree: entry %q: object id: %w", name, noEOF(err))
		}
		if e.Kind, err = kindOf(canonicalMode(mode)); err != nil {
			return nil, &RefusedError{Path: name, Rule: err.Error()}
		}
		if len(entries) == maxEntries {
			return nil, &RefusedError{Path: name, Rule: fmt.Sprintf(RuleEntries, maxEntries)}
		}
		if rule := CheckName(name, e.Kind); rule != "" {
			return nil, &RefusedError{Path: name, Rule: rule}
		}
		if rule := order.next(name, e.Kind == Dir); rule != "" {
			return nil, &RefusedError{Path: name, Rule: rule}
		}
		e.Name = name
		entries = append(entries, e)
	}
}

// noEOF turns an end of input inside an entry into what it is: truncation.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// canonicalMode maps a tree entry's mode as git's canon_mode does (and
// go-git's tree decoder did here before): any regular file is 644 or 755,
// and a mode of no known type is a gitlink.
func canonicalMode(m filemode.FileMode) filemode.FileMode {
	switch m & 0o170000 {
	case 0o040000:
		return filemode.Dir
	case 0o100000:
		if m&0o111 != 0 {
			return filemode.Executable
		}
		return filemode.Regular
	case 0o120000:
		return filemode.Symlink
	}
	return filemode.Submodule
}

func kindOf(m filemode.FileMode) (Kind, error) {
	switch m {
	case filemode.Regular, filemode.Deprecated:
		return File, nil
	case filemode.Executable:
		return Executable, nil
	case filemode.Symlink:
		return Symlink, nil
	case filemode.Dir:
		return Dir, nil
	case filemode.Submodule:
		return Gitlink, nil
	}
	return 0, fmt.Errorf("unsupported mode %o", uint32(m))
}

// Lookup resolves a slash-separated path from the root ("" is the root).
func (s *Snapshot) Lookup(p string) (Entry, error) {
	cur := Entry{Kind: Dir, ID: s.tree}
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return cur, nil
	}
	names := strings.Split(p, "/")
	for i, name := range names {
		if cur.Kind != Dir {
			return Entry{}, fmt.Errorf("%s: %w", p, ErrNotExist)
		}
		entries, err := s.Tree(cur.ID)
		if re := (*RefusedError)(nil); errors.As(err, &re) {
			return Entry{}, re.Under(strings.Join(names[:i], "/"))
		}
		if err != nil {
			return Entry{}, err
		}
		e, ok := Find(entries, name)
		if !ok {
			return Entry{}, fmt.Errorf("%s: %w", p, ErrNotExist)
		}
		cur = e
	}
	return cur, nil
}

// Diff calls fn, in git order, for each name whose entry differs between
// two trees' entries a and b (as Tree returns them: in git order): with
// both entries when the name is in both with other content or kind, with
// a nil one when it is only in one side. It merges the two lists, so it
// costs their length, not a map of each (a workspace update diffs every
// changed directory this way). It stops at fn's first error.
func Diff(a, b []Entry, fn func(x, y *Entry) error) error {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = gitCompare(a[i].Name, a[i].Kind == Dir, b[j].Name, b[j].Kind == Dir)
		}
		var err error
		switch {
		case c == 0:
			if a[i].Kind != b[j].Kind || a[i].ID != b[j].ID {
				err = fn(&a[i], &b[j])
			}
			i++
			j++
		case c < 0:
			// A file and a directory of one name sort apart: the name
			// is in b only if it is there as the other kind.
			if y, ok := Find(b, a[i].Name); ok {
				err = fn(&a[i], &y)
			} else {
				err = fn(&a[i], nil)
			}
			i++
		default:
			if _, ok := Find(a, b[j].Name); !ok { // else reported with a's entry
				err = fn(nil, &b[j])
			}
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Find finds name in a tree's entries by binary search. It relies on git
// order (by name, a directory's name compared as if followed by "/"),
// which readTree enforces on every tree it returns: the entry named name
// sits where name sorts as a file or where it sorts as a directory, so
// both places are searched.
func Find(entries []Entry, name string) (Entry, bool) {
	for _, dir := range [2]bool{false, true} {
		i := sort.Search(len(entries), func(i int) bool {
			e := entries[i]
			return gitCompare(e.Name, e.Kind == Dir, name, dir) >= 0
		})
		if i < len(entries) && entries[i].Name == name && (entries[i].Kind == Dir) == dir {
			return entries[i], true
		}
	}
	return Entry{}, false
}
