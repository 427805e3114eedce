package materialize

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gitfs/gitfs/snapshot"
)

// Limits on what a tree may contain. They exist to refuse hostile trees
// early and cheaply, long before they exhaust memory, descriptors or disk.
// The per-name rules, NAME_MAX and the depth bound are snapshot's (one
// implementation serves the mount and the materializer); what only matters
// when writing to disk (whole paths under the target, entries of the whole
// walk, case folding) is here.
const (
	pathMax = snapshot.PathMax
	// defaultMaxDepth is the depth a snapshot's build already refuses;
	// the plan checks it again for sources that are not built snapshots.
	defaultMaxDepth = snapshot.MaxDepth
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
// offending path inside the tree, Rule the rule it breaks. It is
// snapshot's type, so a refusal found while reading a snapshot's tree and
// one found by the plan look the same to callers.
type RefusedError = snapshot.RefusedError

// refuse reports path as unsafe to write, with what that means for the
// checkout; errors.As finds the *RefusedError.
func refuse(path, rule string) error {
	return fmt.Errorf("%w; nothing was written (the commit cannot be checked out safely)",
		&RefusedError{Path: path, Rule: rule})
}

// Rules, worded for the one-line error a user sees; the per-name ones are
// snapshot's.
const (
	ruleEmpty       = snapshot.RuleEmpty
	ruleDot         = snapshot.RuleDot
	ruleSlash       = snapshot.RuleSlash
	ruleNUL         = snapshot.RuleNUL
	ruleNameMax     = snapshot.RuleNameMax
	ruleDotGit      = snapshot.RuleDotGit
	ruleDuplicate   = snapshot.RuleDuplicate
	rulePathMax     = "path longer than PATH_MAX (4096 bytes) once written under the target directory"
	ruleDepth       = snapshot.RuleDepth
	ruleEntries     = "tree has more than %d entries"
	ruleGitmodules  = snapshot.RuleGitmodules
	ruleLinkEmpty   = snapshot.RuleLinkEmpty
	ruleCollision   = "collides with %q on this case-insensitive file system"
	ruleExistsLater = "collides with an entry already written (the file system folds names)"
)

// checkLinkTarget is snapshot.CheckLinkTarget: the rules for a symlink's
// target live with the name rules.
func checkLinkTarget(target string) string { return snapshot.CheckLinkTarget(target) }

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
