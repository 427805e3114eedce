package gitattr

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// trickyPatterns are wildmatch corner cases: '**' in every position,
// '*' and '?' against '/', classes (negated, ranges, POSIX, malformed),
// backslashes, anchoring, trailing slashes.
var trickyPatterns = []string{
	"foo", "*", "**", "?", "*.c", "*.[ch]", "[!a]*", "[^a]*", "[a-c]*", "[]]", "[]-]", "[!]-]",
	"[a-]", "[-a]", "[z-a]*", "[[:alpha:]]*", "[[:digit:]][[:upper:]]*", "[[:punct:]]*",
	"[[:space:]]*", "[[:xdigit:]]", "[[:nope:]]*", "[[:alpha:]", "[[:alpha]]*", "[a", "a[",
	"\\*", "\\a*", "a\\", "*\\", "x\\[y", "[\\]]", "[\\-a]", "[a\\-z]", "**/foo", "**/*.c",
	"foo/**", "foo/**/bar", "foo/**/**/bar", "**/bar/*", "a/**b", "a**/b", "a/*/b", "a/*",
	"/a", "/a/*", "/*.c", "a/", "a/b/", "**/", "*/", "a/**/", "a?b", "a/?", "?/?",
	"*/*/*", "a/[bc]", "a/[!/]", "a[/]b", "**/a/**/b/**", "***", "a/***/b", "*a*b*",
	"*.x.c", "a*", "*a", "**a", "a**", "x*y*z", "[*]", "[?]*", "ab*cd", "a/b*/c",
	"\\", "\\\\*", "*[", "**/**", "/**", "/**/a",
}

var trickyPaths = []string{
	"foo", "a", "b", "x.c", "x.h", "x.x.c", "]", "-", "a-", "A1", "1A", ".c", "*", "?", "[", "\\",
	"a*", "xa", "ab", "abcd", "ab-cd", "aXcd", "axbycz", "a\\", "x[y", " x", "\tx",
	"a/b", "a/c", "a/x", "a/b/c", "a/x/b", "a/x/y/b", "a/bb", "ab/b", "a/b/foo", "x/foo",
	"foo/bar", "foo/x/bar", "foo/x/y/bar", "foo/bar/baz", "x/bar/y", "a/b/x.c", "d/e/f/x.c",
	"a/bx/c", "b/a/c/b/d", "z/a/b", "foo/", "a/", "a/b/",
}

func quotePattern(p string) string {
	if strings.ContainsAny(p, " \t\"") || strings.HasPrefix(p, "#") {
		return strconv.Quote(p)
	}
	return p
}

// TestWildmatchMatchesGit puts every tricky pattern in a .gitattributes
// (the root's and a nested one) and asks git which paths each matches.
func TestWildmatchMatchesGit(t *testing.T) {
	var root, nested strings.Builder
	for i, p := range trickyPatterns {
		fmt.Fprintf(&root, "%s p%d\n", quotePattern(p), i)
		fmt.Fprintf(&nested, "%s n%d\n", quotePattern(p), i)
	}
	files := []blobFile{
		{path: ".gitattributes", content: root.String()},
		{path: "a/.gitattributes", content: nested.String()},
	}
	r := newRepo(t, files)
	var paths []string
	for _, p := range trickyPaths {
		paths = append(paths, p, "a/"+p)
	}
	compareAttrs(t, r.rules(), r.dir, paths)
}

// TestRandomRulesMatchGit compares Lookup with check-attr over random
// .gitattributes files (patterns, states, macros, malformed lines) at
// several depths and random paths. GITATTR_SEED and GITATTR_ROUNDS
// repeat or extend a run.
func TestRandomRulesMatchGit(t *testing.T) {
	seed := int64(1)
	if s := os.Getenv("GITATTR_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	rounds := 12
	if s := os.Getenv("GITATTR_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		rounds = 3
	}
	for i := 0; i < rounds; i++ {
		s := seed + int64(i)
		t.Run(fmt.Sprint("seed", s), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewSource(s))
			dirs := []string{"", "a", "a/b", "c", "a/b/c"}
			var files []blobFile
			for _, d := range dirs {
				if d != "" && rng.Intn(3) == 0 {
					continue
				}
				p := ".gitattributes"
				if d != "" {
					p = d + "/" + p
				}
				files = append(files, blobFile{path: p, content: randomFile(rng, d == "")})
			}
			r := newRepo(t, files)
			seen := map[string]bool{}
			var paths []string
			for len(paths) < 400 {
				p := randomPath(rng)
				if !seen[p] {
					seen[p] = true
					paths = append(paths, p)
				}
			}
			sort.Strings(paths)
			compareAttrs(t, r.rules(), r.dir, paths)
		})
	}
}

var (
	segs  = []string{"a", "b", "c", "x", "ab", "x.c", "y.h", "a.b", "B", "1", "-", "_x"}
	names = []string{"t1", "t2", "t3", "text", "eol", "binary", "diff", "m1", "m2", "m3", "ident", "x-y", "A.b_c"}
)

func randomPath(rng *rand.Rand) string {
	n := 1 + rng.Intn(4)
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, segs[rng.Intn(len(segs))])
	}
	p := strings.Join(parts, "/")
	if rng.Intn(10) == 0 {
		p += "/"
	}
	return p
}

func randomPattern(rng *rand.Rand) string {
	pieces := []string{"a", "b", "c", "x", ".c", ".h", "*", "**", "?", "[ab]", "[!a]", "[a-c]",
		"[[:alpha:]]", "[^x]", "\\*", "\\a", "/", "/", "/", "**/", "/**", "B", "1"}
	var b strings.Builder
	if rng.Intn(5) == 0 {
		b.WriteString("/")
	}
	for n := 1 + rng.Intn(4); n > 0; n-- {
		b.WriteString(pieces[rng.Intn(len(pieces))])
	}
	if rng.Intn(8) == 0 {
		b.WriteString("/")
	}
	return b.String()
}

func randomState(rng *rand.Rand) string {
	n := names[rng.Intn(len(names))]
	switch rng.Intn(8) {
	case 0:
		return "-" + n
	case 1:
		return "!" + n
	case 2:
		return n + "=v" + strconv.Itoa(rng.Intn(3))
	case 3:
		return n + "="
	case 4:
		return "-" + n + "=x"
	}
	return n
}

func randomLine(rng *rand.Rand, root bool) string {
	var states []string
	for n := rng.Intn(4); n > 0; n-- {
		states = append(states, randomState(rng))
	}
	sep := []string{" ", "\t", "  ", " \t"}[rng.Intn(4)]
	switch rng.Intn(20) {
	case 0:
		return "# " + randomPattern(rng)
	case 1:
		return ""
	case 2: // a macro: allowed only in the root file
		m := []string{"m1", "m2", "m3", "binary", "t1"}[rng.Intn(5)]
		return "[attr]" + m + sep + strings.Join(states, sep)
	case 3:
		return "!" + randomPattern(rng) + " t1"
	case 4:
		return randomPattern(rng) + " bad$name t1"
	case 5:
		return strconv.Quote(randomPattern(rng)+" x") + sep + strings.Join(states, sep)
	case 6:
		return "  " + randomPattern(rng) + sep + strings.Join(states, sep) + " \r"
	case 7:
		return "\"unterminated t1"
	}
	return randomPattern(rng) + sep + strings.Join(states, sep)
}

func randomFile(rng *rand.Rand, root bool) string {
	var b strings.Builder
	if root {
		b.WriteString("[attr]m1 t1 -t2\n[attr]m2 m1 t3=x\n")
	}
	for n := 3 + rng.Intn(12); n > 0; n-- {
		b.WriteString(randomLine(rng, root))
		b.WriteString("\n")
	}
	return b.String()
}

// TestRandomBlobsMatchGit checks Apply against a clone for random blobs
// built from the bytes the conversions care about, under attribute sets
// that take git's streaming and in-core paths.
func TestRandomBlobsMatchGit(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	pieces := []string{"\n", "\r", "\r\n", "$Id$", "$Id: x $", "$Id: a b $", "$Id:", "$I", "$", "Id", "a", " ",
		"\t", "\x00", "é", "\x1a", "\x01", "$Id:\n", "$$Id$", "xyz\n"}
	classes := []string{
		"*.a text eol=crlf", "*.b text=auto", "*.c text=auto eol=crlf", "*.d ident",
		"*.e ident text eol=crlf", "*.f ident text=auto", "*.g ident working-tree-encoding=UTF-16 text eol=crlf",
		"*.h ident text=auto eol=lf", "*.i working-tree-encoding=ISO-8859-1", "*.j",
	}
	files := []blobFile{{path: ".gitattributes", content: strings.Join(classes, "\n") + "\n"}}
	for i := 0; i < 60; i++ {
		var b strings.Builder
		for n := rng.Intn(12); n > 0; n-- {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		for _, ext := range "abcdefghij" {
			files = append(files, blobFile{path: fmt.Sprintf("f%d.%c", i, ext), content: b.String()})
		}
	}
	r := newRepo(t, files)
	rs := r.rules()
	for _, c := range checkoutConfigs[:4] {
		wt, stderr, err := clone(t, r.dir, c.git...)
		if err != nil {
			t.Fatalf("clone: %v: %s", err, stderr)
		}
		compareCheckout(t, r, rs, wt, c.cfg)
	}
}
