package gitattr

import (
	"sort"
	"strings"
)

// State is how an attribute is specified for a path.
type State uint8

const (
	// Unspecified: no line sets the attribute, or the line that decides
	// it says "!name".
	Unspecified State = iota
	// Set: "name".
	Set
	// Unset: "-name".
	Unset
	// Value: "name=value" (the value may be empty).
	Value
)

// Attr is one attribute of a path.
type Attr struct {
	Name  string
	State State
	Value string // when State is Value
}

// String is the attribute's state as `git check-attr` prints it.
func (a Attr) String() string {
	switch a.State {
	case Set:
		return "set"
	case Unset:
		return "unset"
	case Value:
		return a.Value
	}
	return "unspecified"
}

// Attrs are the attributes of one path, as Lookup found them.
// The zero value has none.
type Attrs struct {
	list []Attr // in interning order, never Unspecified
}

// Get returns the named attribute (State Unspecified if none applies).
func (a Attrs) Get(name string) Attr {
	for _, at := range a.list {
		if at.Name == name {
			return at
		}
	}
	return Attr{Name: name}
}

// All returns the attributes `git check-attr -a` lists (every one that
// is set, unset or has a value), sorted by name.
func (a Attrs) All() []Attr {
	out := append([]Attr(nil), a.list...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Empty reports whether no attribute applies.
func (a Attrs) Empty() bool { return len(a.list) == 0 }

// Filter returns the filter driver named by the "filter" attribute
// (e.g. "lfs"), or "". gitfs runs no filter driver: a caller shows the
// blob as stored (after Conversion, which is what git does when the
// driver is not configured) and records that it did so.
func (a Attrs) Filter() string {
	if f := a.Get("filter"); f.State == Value {
		return f.Value
	}
	return ""
}

const (
	macroPrefix = "[attr]"
	blank       = " \t\r\n"
	// git ignores longer lines (attr.h, ATTR_MAX_LINE_LENGTH) and larger
	// files (ATTR_MAX_FILE_SIZE), since 2.39.1 / CVE-2022-23521.
	maxLineLength = 2048
	maxFileSize   = 100 << 20
)

// assign is one "name", "-name", "!name" or "name=value" of a line;
// State Unspecified stands for "!name".
type assign struct {
	attr  int
	state State
	value string
}

// pattern flags, as dir.c's PATTERN_FLAG_*.
const (
	flagNoDir     = 1 << iota // no '/' but a trailing one: match the basename
	flagMustBeDir             // trailing '/': matches directories only
	flagEndsWith              // "*literal": a suffix compare
)

type pattern struct {
	text   string // without the trailing '/'
	prefix int    // bytes before the first glob-special one (nowildcardlen)
	flags  uint8
	last   byte // if not 0, a literal the matched name must end with
}

type rule struct {
	pat    pattern
	assign []assign
}

type attrFile struct {
	dir   string
	rules []rule
}

// Rules are the attributes of one tree: every .gitattributes in it.
// Add every file before the first Lookup; Lookup may then be called from
// many goroutines at once. The zero value is ready to use and has no
// rules (only the built-in "binary" macro).
type Rules struct {
	names  []string
	ids    map[string]int
	files  map[string]*attrFile // by directory, "" for the root
	macros [][]assign           // by attribute: its definition, if a macro
	nrules int                  // pattern lines, over all files
	nested int                  // files other than the root's
	// under holds every directory that is or contains one with a
	// .gitattributes, so that Lookup stops descending where none can be.
	under map[string]bool
}

func (r *Rules) init() {
	if r.ids != nil {
		return
	}
	r.ids = map[string]int{}
	r.files = map[string]*attrFile{}
	// git's only built-in line (attr.c, builtin_attr).
	r.parseLine("[attr]binary -diff -merge -text", true, nil)
}

func (r *Rules) intern(name string) int {
	if id, ok := r.ids[name]; ok {
		return id
	}
	id := len(r.names)
	r.names = append(r.names, name)
	r.ids[name] = id
	r.macros = append(r.macros, nil)
	return id
}

// Add adds the lines of the .gitattributes file found in directory dir
// (slash-separated, relative to the root; "" for the root). content is
// the file's blob, read as git reads it on checkout (from the index): up
// to its first NUL byte, with no byte-order mark removed. Macro
// definitions ("[attr]name ...") count only in the root's file, as in
// git; lines git ignores (malformed, negative patterns, over 2048 bytes,
// a file of 100 MiB or more) are ignored.
//
// git reads a .gitattributes that is a symbolic link in the tree as its
// blob too, the link's target (checkout reads it from the index), so a
// caller matching git passes that blob as well.
func (r *Rules) Add(dir string, content []byte) {
	r.init()
	dir = strings.Trim(dir, "/")
	if dir == "." {
		dir = ""
	}
	if len(content) >= maxFileSize {
		return
	}
	s := string(content)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	f := r.files[dir]
	if f == nil {
		f = &attrFile{dir: dir}
		r.files[dir] = f
		if dir != "" {
			r.nested++
			if r.under == nil {
				r.under = map[string]bool{}
			}
			for d := dir; ; {
				r.under[d] = true
				i := strings.LastIndexByte(d, '/')
				if i < 0 {
					break
				}
				d = d[:i]
			}
		}
	}
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		r.parseLine(line, dir == "", f)
	}
}

func validName(name string) bool {
	if name == "" || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '-' || c == '.' || c == '_' ||
			('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

// cspan is C's strcspn(s, blank): it stops at a NUL as well.
func cspan(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || strings.IndexByte(blank, s[i]) >= 0 {
			return i
		}
	}
	return len(s)
}

func skipBlank(s string) string { return strings.TrimLeft(s, blank) }

// parseLine follows attr.c's parse_attr_line. A line it rejects is
// dropped whole, as git drops it (with a warning this package does not
// print).
func (r *Rules) parseLine(line string, macroOK bool, f *attrFile) {
	cp := skipBlank(line)
	if cp == "" || cp[0] == '#' {
		return
	}
	if len(line) >= maxLineLength {
		return
	}
	var name, states string
	quoted := false
	if cp[0] == '"' {
		name, states, quoted = unquoteC(cp)
	}
	if !quoted {
		n := cspan(cp)
		name, states = cp[:n], cp[n:]
	}
	isMacro := false
	if len(name) > len(macroPrefix) && strings.HasPrefix(name, macroPrefix) {
		if !macroOK {
			return
		}
		isMacro = true
		name = skipBlank(name[len(macroPrefix):])
		name = name[:cspan(name)]
		if !validName(name) {
			return
		}
	}
	states = skipBlank(states)

	// First pass, as git's: any invalid name rejects the line.
	type tok struct {
		state       State
		name, value string
	}
	var toks []tok
	for cp := states; cp != ""; {
		ep := cspan(cp)
		if ep == 0 { // a NUL from a quoted pattern's tail ends the C string
			break
		}
		word := cp[:ep]
		t := tok{state: Set}
		nameEnd := len(word)
		if eq := strings.IndexByte(word, '='); eq >= 0 {
			nameEnd = eq
			t.state, t.value = Value, word[eq+1:]
		}
		start := 0
		if word[0] == '-' || word[0] == '!' {
			start = 1
			if word[0] == '-' {
				t.state = Unset
			} else {
				t.state = Unspecified
			}
			t.value = ""
		}
		if nameEnd < start || !validName(word[start:nameEnd]) {
			return
		}
		t.name = word[start:nameEnd]
		toks = append(toks, t)
		cp = skipBlank(cp[ep:])
	}

	var pat pattern
	if !isMacro {
		// git copies the pattern into a C string: a NUL ends it.
		if i := strings.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		var negative bool
		pat, negative = parsePattern(name)
		if negative {
			return // "Negative patterns are ignored in git attributes"
		}
	}
	as := make([]assign, len(toks))
	for i, t := range toks {
		as[i] = assign{attr: r.intern(t.name), state: t.state, value: t.value}
	}
	if isMacro {
		// Later definitions win; the root's win over the built-in one
		// (it is parsed first).
		r.macros[r.intern(name)] = as
		return
	}
	f.rules = append(f.rules, rule{pat: pat, assign: as})
	r.nrules++
}

// unquoteC is quote.c's unquote_c_style for a string starting with '"':
// the unquoted text, what follows the closing quote, and whether the
// quoting was well formed.
func unquoteC(s string) (string, string, bool) {
	var b strings.Builder
	i := 1
	for {
		j := strings.IndexAny(s[i:], "\"\\")
		if j < 0 {
			return "", "", false
		}
		b.WriteString(s[i : i+j])
		i += j
		c := s[i]
		i++
		if c == '"' {
			return b.String(), s[i:], true
		}
		if i >= len(s) {
			return "", "", false
		}
		ch := s[i]
		i++
		switch ch {
		case 'a':
			ch = '\a'
		case 'b':
			ch = '\b'
		case 'f':
			ch = '\f'
		case 'n':
			ch = '\n'
		case 'r':
			ch = '\r'
		case 't':
			ch = '\t'
		case 'v':
			ch = '\v'
		case '\\', '"':
		case '0', '1', '2', '3':
			ac := (ch - '0') << 6
			for k := 0; k < 2; k++ {
				d := at(s, i)
				i++
				if d < '0' || d > '7' {
					return "", "", false
				}
				ac |= (d - '0') << (3 * (1 - k))
			}
			ch = ac
		default:
			return "", "", false
		}
		b.WriteByte(ch)
	}
}

// parsePattern is dir.c's parse_path_pattern.
func parsePattern(p string) (pat pattern, negative bool) {
	if strings.HasPrefix(p, "!") {
		return pat, true
	}
	if strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
		pat.flags |= flagMustBeDir
	}
	if strings.IndexByte(p, '/') < 0 {
		pat.flags |= flagNoDir
	}
	pat.text = p
	pat.prefix = simpleLength(p)
	if strings.HasPrefix(p, "*") && simpleLength(p[1:]) == len(p)-1 {
		pat.flags |= flagEndsWith
	}
	// A quick reject for wildmatch: a pattern ending in a plain byte
	// matches only names ending in it (a ']' may close a class, a '\'
	// or '/' needs wildmatch's own handling, a byte after '\' is
	// literal but the simpler rule suffices).
	if n := len(p); n >= 2 && p[n-2] != '\\' {
		if c := p[n-1]; !isGlobSpecial(c) && c != ']' && c != '/' {
			pat.last = c
		}
	}
	return pat, false
}

func simpleLength(s string) int {
	for i := 0; i < len(s); i++ {
		if isGlobSpecial(s[i]) {
			return i
		}
	}
	return len(s)
}

// matches is attr.c's path_matches: path is the whole path (a trailing
// '/' marks a directory), base the directory of the pattern's file.
func (p *pattern) matches(path string, basename int, isDir bool, base string) bool {
	if p.flags&flagMustBeDir != 0 && !isDir {
		return false
	}
	end := len(path)
	if isDir {
		end--
	}
	if p.last != 0 && (end == 0 || path[end-1] != p.last) {
		return false
	}
	if p.flags&flagNoDir != 0 {
		// dir.c's match_basename.
		name := path[basename:end]
		switch {
		case p.prefix == len(p.text):
			return name == p.text
		case p.flags&flagEndsWith != 0:
			return strings.HasSuffix(name, p.text[1:])
		}
		return wildmatch(p.text, name, false)
	}
	// dir.c's match_pathname: the pattern is relative to base.
	pat, prefix := p.text, p.prefix
	if strings.HasPrefix(pat, "/") {
		pat, prefix = pat[1:], prefix-1
	}
	path = path[:end]
	if len(path) < len(base)+1 || (base != "" && path[len(base)] != '/') || path[:len(base)] != base {
		return false
	}
	name := path
	if base != "" {
		name = path[len(base)+1:]
	}
	if prefix > 0 {
		if prefix > len(name) || pat[:prefix] != name[:prefix] {
			return false
		}
		pat, name = pat[prefix:], name[prefix:]
		if pat == "" && name == "" {
			return true
		}
	}
	return wildmatch(pat, name, true)
}

// Lookup returns the attributes that apply to path (slash-separated,
// relative to the root; a trailing '/' names a directory), with git's
// precedence: the .gitattributes of deeper directories win over those of
// shallower ones, later lines over earlier ones, later attributes of a
// line over earlier ones; the first (highest-precedence) line that
// decides an attribute fixes it, "!name" included. A macro set to true
// expands, at its own precedence, into the attributes it stands for.
func (r *Rules) Lookup(path string) Attrs {
	if r == nil || r.nrules == 0 {
		return Attrs{}
	}
	isDir := strings.HasSuffix(path, "/")
	end := len(path)
	if isDir {
		end--
	}
	basename, dirlen := 0, 0
	if i := strings.LastIndexByte(path[:end], '/'); i >= 0 {
		basename, dirlen = i+1, i
	}

	// vals[attr] is the assignment that decided attr, nil while none has.
	var buf [32]*assign
	var vals []*assign
	if n := len(r.names); n <= len(buf) {
		vals = buf[:n]
	} else {
		vals = make([]*assign, n)
	}
	rem := len(vals)
	fill := func(f *attrFile) {
		for i := len(f.rules) - 1; i >= 0 && rem > 0; i-- {
			ru := &f.rules[i]
			if ru.pat.matches(path, basename, isDir, f.dir) {
				rem = r.fillOne(vals, ru.assign, rem)
			}
		}
	}
	if r.nested > 0 {
		// The path's directories that have a file, shallowest first,
		// found top-down and stopping where no deeper file can be.
		var stack [16]*attrFile
		files := stack[:0]
		dir := path[:dirlen]
		for i := 0; i <= len(dir) && dir != ""; {
			j := strings.IndexByte(dir[i:], '/')
			if j < 0 {
				j = len(dir)
			} else {
				j += i
			}
			d := dir[:j]
			if !r.under[d] {
				break
			}
			if f := r.files[d]; f != nil {
				files = append(files, f)
			}
			i = j + 1
		}
		for i := len(files) - 1; i >= 0; i-- {
			fill(files[i])
		}
	}
	if f := r.files[""]; f != nil {
		fill(f)
	}

	n := 0
	for _, v := range vals {
		if v != nil && v.state != Unspecified {
			n++
		}
	}
	if n == 0 {
		return Attrs{}
	}
	out := make([]Attr, 0, n)
	for id, v := range vals {
		if v != nil && v.state != Unspecified {
			out = append(out, Attr{Name: r.names[id], State: v.state, Value: v.value})
		}
	}
	return Attrs{list: out}
}

// fillOne is attr.c's fill_one: the line's attributes, last first, that
// nothing of higher precedence decided yet.
func (r *Rules) fillOne(vals []*assign, as []assign, rem int) int {
	for i := len(as) - 1; i >= 0 && rem > 0; i-- {
		a := &as[i]
		if vals[a.attr] != nil {
			continue
		}
		vals[a.attr] = a
		rem--
		if m := r.macros[a.attr]; m != nil && a.state == Set {
			rem = r.fillOne(vals, m, rem)
		}
	}
	return rem
}
