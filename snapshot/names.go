package snapshot

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The rules every tree entry must pass before anything serves it: the
// FUSE mount lists and looks up names exactly as a tree holds them, and the
// materializer writes them to disk, so one hostile tree (".." or ".git"
// entries, a name with "/", duplicates) would otherwise reach the kernel or
// make `git status` in a workspace run the tree's own hooks. Fetch-time
// fsck in the mirror is not enough: it can be turned off, older snapshots
// predate it, and a tree bomb passes it. This file is the one place these
// rules live; materialize adds only what matters for writing to disk
// (PATH_MAX of whole paths, total entries, case folding).

// Limits on names and trees.
const (
	NameMax = 255  // NAME_MAX on Linux: longer names fail in the kernel anyway
	PathMax = 4096 // PATH_MAX including the terminating NUL
	// MaxDepth is far beyond real repositories (deep node_modules trees
	// reach ~100) and well below what PATH_MAX would allow with one-letter
	// names (2048), so a depth bomb is refused before a walk costs
	// anything, and recursive walks stay shallow.
	MaxDepth = 1024
	// DefaultMaxTreeEntries is the default of Options.MaxTreeEntries.
	DefaultMaxTreeEntries = 1 << 18
)

// Rules, worded for the one-line error a user sees. RefusedError.Rule is
// one of them (those with a %d formatted).
const (
	RuleEmpty      = "empty name"
	RuleDot        = `name is "." or ".."`
	RuleSlash      = `name contains "/"`
	RuleNUL        = "name contains a NUL byte"
	RuleNameMax    = "name longer than 255 bytes (NAME_MAX)"
	RuleDotGit     = `name is ".git" or an alias of it (any case, NTFS "git~1", trailing dots or spaces, HFS ignorable characters)`
	RuleGitmodules = "symlinked .gitmodules (git refuses it too)"
	RuleDuplicate  = "duplicate entry in one tree"
	RuleOrder      = "entries out of git order (sorted by name, a directory as if followed by \"/\")"
	RuleEntries    = "one tree has more than %d entries"
	RuleDepth      = "tree nested deeper than %d levels"
	RuleLinkEmpty  = "symlink with an empty target"
	RuleLinkNUL    = "symlink target contains a NUL byte"
	RuleLinkMax    = "symlink target longer than PATH_MAX"
)

// RefusedError reports a tree entry that breaks a rule; such a tree is
// never served. Path is the entry's slash-separated path from the commit's
// root when the caller knew where the tree is (Tree is then zero);
// otherwise Path is the entry's name and Tree the tree holding it.
type RefusedError struct {
	Path string
	Rule string
	Tree ID
}

func (e *RefusedError) Error() string {
	if e.Tree.IsZero() {
		return fmt.Sprintf("refused unsafe tree: path %q: %s", e.Path, e.Rule)
	}
	return fmt.Sprintf("refused unsafe tree: entry %q of tree %s: %s", e.Path, e.Tree, e.Rule)
}

// Under returns the refusal placed at dir, the path from the root of the
// tree the entry was found in ("" for the root itself). A refusal that
// already has its full path is returned as is.
func (e *RefusedError) Under(dir string) *RefusedError {
	if e.Tree.IsZero() {
		return e
	}
	p := e.Path
	if dir != "" {
		p = dir + "/" + p
	}
	return &RefusedError{Path: p, Rule: e.Rule}
}

// CheckName applies the per-name rules to one tree entry of kind k. It
// returns the broken rule, or "" if the name is safe.
func CheckName(name string, k Kind) string {
	switch {
	case name == "":
		return RuleEmpty
	case name == "." || name == "..":
		return RuleDot
	case strings.IndexByte(name, '/') >= 0:
		return RuleSlash
	case strings.IndexByte(name, 0) >= 0:
		return RuleNUL
	case len(name) > NameMax:
		return RuleNameMax
	}
	if isDotGit(name) {
		return RuleDotGit
	}
	if k == Symlink && isAlias(name, ".gitmodules") {
		return RuleGitmodules
	}
	return ""
}

// CheckLinkTarget applies the rules for a symlink's target. Targets may
// point anywhere, as in git: the materializer never follows a link it
// writes, and writes links only after every file is written.
func CheckLinkTarget(target string) string {
	switch {
	case target == "":
		return RuleLinkEmpty
	case strings.IndexByte(target, 0) >= 0:
		return RuleLinkNUL
	case len(target) >= PathMax:
		return RuleLinkMax
	}
	return ""
}

// isDotGit reports whether name would be, or would be taken for, ".git"
// on some file system the tree might later be copied to: any case (HFS+,
// APFS, NTFS, casefolded ext4), with HFS+'s ignorable code points inside,
// with NTFS's trailing dots and spaces or an alternate stream suffix
// (".git::$INDEX_ALLOCATION"), NTFS's 8.3 short name "git~1", and after a
// backslash, which Windows treats as a separator.
func isDotGit(name string) bool {
	if isAlias(name, ".git") {
		return true
	}
	for _, part := range strings.Split(name, `\`) {
		base := ntfsBase(part)
		if strings.EqualFold(base, ".git") || isShortGit(base) {
			return true
		}
	}
	return false
}

// isAlias reports whether name folds to want after removing HFS+
// ignorable code points and NTFS's trailing dots, spaces and stream
// suffix.
func isAlias(name, want string) bool {
	if len(name) < len(want) {
		return false
	}
	return strings.EqualFold(ntfsBase(stripIgnorable(name)), want)
}

// ntfsBase is what NTFS makes of a name: it drops an alternate data
// stream suffix (":stream") and trailing dots and spaces.
func ntfsBase(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		name = name[:i]
	}
	return strings.TrimRight(name, ". ")
}

// isShortGit matches NTFS 8.3 short names of ".git": "git~1" (git itself
// only checks ~1; any digit costs nothing and is never a real name).
func isShortGit(name string) bool {
	if len(name) < 5 || !strings.EqualFold(name[:4], "git~") {
		return false
	}
	for _, c := range name[4:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// stripIgnorable removes the code points HFS+ ignores when comparing
// names (zero-width joiners, direction marks, the byte order mark...), so
// that ".g\u200cit" is seen as ".git". Invalid UTF-8 is left as is.
func stripIgnorable(name string) string {
	if !utf8.ValidString(name) {
		return name
	}
	clean := true
	for _, r := range name {
		if hfsIgnorable(r) {
			clean = false
			break
		}
	}
	if clean {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if !hfsIgnorable(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hfsIgnorable(r rune) bool {
	switch {
	case r >= 0x200c && r <= 0x200f, // ZWNJ, ZWJ, LRM, RLM
		r >= 0x202a && r <= 0x202e, // bidi embeddings and overrides
		r >= 0x206a && r <= 0x206f, // deprecated format characters
		r == 0xfeff:                // zero-width no-break space (BOM)
		return true
	}
	return false
}

// gitCompare orders two entries of one tree as git does: by name bytes, a
// directory's name compared as if followed by "/" (gitlinks are not
// directories here). 0 means the same name and the same dir-ness.
func gitCompare(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	next := func(s string, dir bool) int {
		if len(s) > n {
			return int(s[n])
		}
		if dir {
			return '/'
		}
		return 0
	}
	return next(a, aDir) - next(b, bDir)
}

// orderCheck checks that a tree's entries, fed in order, are in strict git
// order with no name twice. Strict order alone misses a file "a" and a
// directory "a": they sort as "a" and "a/", and names like "a-b" or "a.c"
// (bytes below '/') may sit between them. So it keeps, as a stack, the
// names of non-directories that a directory of the same name could still
// follow: each is a prefix of the next, and a name stays a candidate only
// while every later name extends it with a byte below '/'. Memory is the
// longest such chain, not the tree.
type orderCheck struct {
	prev    string
	prevDir bool
	started bool
	cands   []string
}

// next checks the entry following those already fed; it returns the broken
// rule or "".
func (o *orderCheck) next(name string, dir bool) string {
	if o.started {
		switch c := gitCompare(o.prev, o.prevDir, name, dir); {
		case c == 0:
			return RuleDuplicate
		case c > 0:
			if o.prev == name {
				return RuleDuplicate // a directory, then a file of its name
			}
			return RuleOrder
		}
	}
	o.prev, o.prevDir, o.started = name, dir, true
	for len(o.cands) > 0 {
		f := o.cands[len(o.cands)-1]
		if dir && name == f {
			return RuleDuplicate
		}
		if len(name) > len(f) && name[:len(f)] == f && name[len(f)] < '/' {
			break
		}
		o.cands = o.cands[:len(o.cands)-1]
	}
	if !dir {
		o.cands = append(o.cands, name)
	}
	return ""
}
