package materialize

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a tree may contain. They exist to refuse hostile trees
// early and cheaply, long before they exhaust memory, descriptors or disk.
const (
	nameMax = 255  // NAME_MAX on Linux: longer names fail in the kernel anyway
	pathMax = 4096 // PATH_MAX including the terminating NUL
	// defaultMaxDepth is far beyond real repositories (deep node_modules
	// trees reach ~100) and well below what PATH_MAX would allow with
	// one-letter names (2048), so a depth bomb is refused before the walk
	// costs anything.
	defaultMaxDepth = 1024
	// defaultMaxEntries bounds the plan's memory (about 64 bytes per entry)
	// and stops trees that reuse one subtree many times from expanding
	// into billions of paths.
	defaultMaxEntries = 4_000_000
)

// limits are the bounds a plan enforces; tests lower them.
type limits struct {
	maxDepth   int
	maxEntries int
}

var defaultLimits = limits{maxDepth: defaultMaxDepth, maxEntries: defaultMaxEntries}

// RefusedError reports a tree that is unsafe to write: Path is the
// offending path inside the tree, Rule the rule it breaks.
type RefusedError struct {
	Path string
	Rule string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused unsafe tree: path %q: %s; nothing was written (the commit cannot be checked out safely)", e.Path, e.Rule)
}

func refuse(path, rule string) error { return &RefusedError{Path: path, Rule: rule} }

// Rules, worded for the one-line error a user sees.
const (
	ruleEmpty       = "empty name"
	ruleDot         = `name is "." or ".."`
	ruleSlash       = `name contains "/"`
	ruleNUL         = "name contains a NUL byte"
	ruleNameMax     = "name longer than 255 bytes (NAME_MAX)"
	ruleDotGit      = `name is ".git" or an alias of it (any case, NTFS "git~1", trailing dots or spaces, HFS ignorable characters)`
	ruleDuplicate   = "duplicate entry in one tree"
	rulePathMax     = "path longer than PATH_MAX (4096 bytes) once written under the target directory"
	ruleDepth       = "tree nested deeper than %d levels"
	ruleEntries     = "tree has more than %d entries"
	ruleGitmodules  = "symlinked .gitmodules (git refuses it too)"
	ruleLinkEmpty   = "symlink with an empty target"
	ruleLinkNUL     = "symlink target contains a NUL byte"
	ruleLinkMax     = "symlink target longer than PATH_MAX"
	ruleCollision   = "collides with %q on this case-insensitive file system"
	ruleExistsLater = "collides with an entry already written (the file system folds names)"
)

// checkName applies the per-name rules to one tree entry name. It returns
// the broken rule, or "" if the name is safe.
func checkName(name string, symlink bool) string {
	switch {
	case name == "":
		return ruleEmpty
	case name == "." || name == "..":
		return ruleDot
	case strings.IndexByte(name, '/') >= 0:
		return ruleSlash
	case strings.IndexByte(name, 0) >= 0:
		return ruleNUL
	case len(name) > nameMax:
		return ruleNameMax
	}
	if isDotGit(name) {
		return ruleDotGit
	}
	if symlink && isAlias(name, ".gitmodules") {
		return ruleGitmodules
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

// checkLinkTarget applies the rules for a symlink's target. Targets may
// point anywhere, as in git: the materializer never follows a link it
// writes, and writes links only after every file is written.
func checkLinkTarget(target string) string {
	switch {
	case target == "":
		return ruleLinkEmpty
	case strings.IndexByte(target, 0) >= 0:
		return ruleLinkNUL
	case len(target) >= pathMax:
		return ruleLinkMax
	}
	return ""
}

// foldKey maps a name to a key equal for names a case-insensitive file
// system treats as one: each rune is replaced by the smallest rune of its
// simple case-folding orbit. Normalization differences (NFC/NFD) are not
// folded here; the file system reports those through EEXIST, which the
// writer treats as a collision too.
func foldKey(name string) string {
	ascii := true
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(name)
	}
	var b strings.Builder
	for _, r := range name {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}
