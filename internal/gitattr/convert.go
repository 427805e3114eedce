package gitattr

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// AutoCRLF is core.autocrlf.
type AutoCRLF int8

const (
	AutoCRLFFalse AutoCRLF = iota // the default
	AutoCRLFTrue
	AutoCRLFInput
)

// EOL is core.eol.
type EOL int8

const (
	EOLUnset  EOL = iota // the default: native
	EOLLF                // "lf"
	EOLCRLF              // "crlf"
	EOLNative            // "native": LF, since gitfs runs where git's native eol is LF
)

// Config is the part of a repository's configuration that checkout's
// conversions read. The zero value is a fresh clone's on Linux
// (core.autocrlf=false, core.eol unset, i.e. native, i.e. lf).
type Config struct {
	AutoCRLF AutoCRLF
	EOL      EOL
}

// ParseConfig reads core.autocrlf and core.eol as git's config.c does
// (pass "" for a key that is not set, and "true" for a key set with no
// value, as git reads it). An autocrlf that is neither
// "input" nor a boolean is an error, as git dies on it; an unknown
// core.eol means unset, as in git.
func ParseConfig(autocrlf, eol string) (Config, error) {
	var c Config
	if strings.EqualFold(autocrlf, "input") {
		c.AutoCRLF = AutoCRLFInput
	} else if autocrlf != "" {
		b, ok := parseBool(autocrlf)
		if !ok {
			return c, fmt.Errorf("gitattr: bad boolean config value %q for core.autocrlf", autocrlf)
		}
		if b {
			c.AutoCRLF = AutoCRLFTrue
		}
	}
	switch strings.ToLower(eol) {
	case "lf":
		c.EOL = EOLLF
	case "crlf":
		c.EOL = EOLCRLF
	case "native":
		c.EOL = EOLNative
	}
	return c, nil
}

// parseBool is git's git_parse_maybe_bool: the words, or an int (C's
// base-0 syntax, a k/m/g suffix, within an int's range) that is true
// when not zero.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "on":
		return true, true
	case "false", "no", "off", "":
		return false, true
	}
	factor := int64(1)
	if n := len(s); n > 1 {
		switch s[n-1] {
		case 'k', 'K':
			factor, s = 1<<10, s[:n-1]
		case 'm', 'M':
			factor, s = 1<<20, s[:n-1]
		case 'g', 'G':
			factor, s = 1<<30, s[:n-1]
		}
	}
	digits, neg := strings.TrimLeft(s, " \t\n\v\f\r"), false
	if rest, cut := strings.CutPrefix(digits, "-"); cut {
		digits, neg = rest, true
	} else {
		digits = strings.TrimPrefix(digits, "+")
	}
	base := 10
	switch {
	case len(digits) > 2 && (digits[:2] == "0x" || digits[:2] == "0X"):
		base, digits = 16, digits[2:]
	case len(digits) > 1 && digits[0] == '0':
		base, digits = 8, digits[1:]
	}
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return false, false
	}
	n, err := strconv.ParseInt(digits, base, 64)
	if err != nil || n > math.MaxInt32/factor {
		return false, false
	}
	if neg {
		n = -n
	}
	return n != 0, true
}

// textEOLIsCRLF is convert.c's text_eol_is_crlf.
func (c Config) textEOLIsCRLF() bool {
	switch c.AutoCRLF {
	case AutoCRLFTrue:
		return true
	case AutoCRLFInput:
		return false
	}
	return c.EOL == EOLCRLF
}

// crlfAction is convert.c's enum convert_crlf_action.
type crlfAction int8

const (
	crlfUndefined crlfAction = iota
	crlfBinary
	crlfText
	crlfTextInput
	crlfTextCRLF
	crlfAuto
	crlfAutoInput
	crlfAutoCRLF
)

func checkCRLF(a Attr) crlfAction {
	switch a.State {
	case Set:
		return crlfText
	case Unset:
		return crlfBinary
	case Value:
		switch a.Value {
		case "input":
			return crlfTextInput
		case "auto":
			return crlfAuto
		}
	}
	return crlfUndefined
}

// Conversion is what checkout does to a blob's bytes for one path, in
// git's order (convert.c, convert_to_working_tree_ca_internal): ident
// expansion, then LF to CRLF, then re-encoding from UTF-8 to the
// working-tree-encoding. The smudge filter that git would run last is
// not run. The zero value converts nothing.
type Conversion struct {
	ident    bool
	crlf     bool // output is CRLF (convert.c's output_eol == EOL_CRLF)
	auto     bool // text=auto: leave binary blobs and blobs with CR alone
	stream   bool // git checks this out through its stream filters
	encName  string
	encoding *wtEncoding
	err      error // checkout fails for this path in git
}

// ErrEncodingAttr: working-tree-encoding is set rather than given a
// value; git dies on it ("true/false are no valid
// working-tree-encodings"), so no checkout of the tree exists to match.
var ErrEncodingAttr = errors.New("gitattr: true/false are no valid working-tree-encodings")

// EncodingError reports a working-tree-encoding that could not be
// applied. git prints an error and writes the content without the
// re-encoding, and so does Apply.
type EncodingError struct {
	Encoding string
	Err      error
}

func (e *EncodingError) Error() string {
	return fmt.Sprintf("gitattr: failed to encode from UTF-8 to %s: %v", e.Encoding, e.Err)
}

func (e *EncodingError) Unwrap() error { return e.Err }

// Conversion returns what checkout does for a path with these attributes
// under cfg (convert.c's convert_attrs).
func (a Attrs) Conversion(cfg Config) Conversion {
	var c Conversion
	action := crlfUndefined
	var eol, wte Attr
	for _, at := range a.list {
		switch at.Name {
		case "ident":
			c.ident = at.State == Set
		case "eol":
			eol = at
		case "working-tree-encoding":
			wte = at
		}
	}
	if len(a.list) > 0 {
		action = checkCRLF(a.Get("text"))
		if action == crlfUndefined {
			action = checkCRLF(a.Get("crlf"))
		}
	}
	if action != crlfBinary && eol.State == Value {
		lf, crlf := eol.Value == "lf", eol.Value == "crlf"
		switch {
		case action == crlfAuto && lf:
			action = crlfAutoInput
		case action == crlfAuto && crlf:
			action = crlfAutoCRLF
		case lf:
			action = crlfTextInput
		case crlf:
			action = crlfTextCRLF
		}
	}
	switch wte.State {
	case Set:
		c.err = ErrEncodingAttr
	// Unset ("-working-tree-encoding") is git's FALSE, an empty
	// string to strlen: no encoding.
	case Value:
		if wte.Value != "" && !sameEncoding(wte.Value, "UTF-8") {
			c.encName = wte.Value
			c.encoding = lookupEncoding(wte.Value)
		}
	}
	if action == crlfText {
		if cfg.textEOLIsCRLF() {
			action = crlfTextCRLF
		} else {
			action = crlfTextInput
		}
	}
	if action == crlfUndefined {
		switch cfg.AutoCRLF {
		case AutoCRLFFalse:
			action = crlfBinary
		case AutoCRLFTrue:
			action = crlfAutoCRLF
		case AutoCRLFInput:
			action = crlfAutoInput
		}
	}
	// convert.c's output_eol.
	switch action {
	case crlfTextCRLF, crlfAutoCRLF:
		c.crlf = true
	case crlfAuto:
		c.crlf = cfg.textEOLIsCRLF()
	}
	c.auto = action == crlfAuto || action == crlfAutoCRLF || action == crlfAutoInput
	// entry.c writes through convert.c's stream filters whenever
	// classify_conv_attrs allows (no filter driver, no encoding, no
	// CRLF_AUTO/CRLF_AUTO_CRLF), and their ident expansion differs from
	// the in-core one in corner cases.
	c.stream = c.encName == "" && c.err == nil && action != crlfAuto && action != crlfAutoCRLF
	return c
}

// None reports whether the conversion leaves every blob as it is, so
// that a caller can serve the blob's bytes (and size) directly.
func (c Conversion) None() bool {
	return !c.ident && !c.crlf && c.encName == "" && c.err == nil
}

// String describes the conversion, e.g. "ident eol=crlf(auto)
// encoding=UTF-16", or "none".
func (c Conversion) String() string {
	var parts []string
	if c.ident {
		parts = append(parts, "ident")
	}
	if c.crlf {
		if c.auto {
			parts = append(parts, "eol=crlf(auto)")
		} else {
			parts = append(parts, "eol=crlf")
		}
	}
	if c.encName != "" {
		parts = append(parts, "encoding="+c.encName)
	}
	if c.err != nil {
		parts = append(parts, "error")
	}
	if parts == nil {
		return "none"
	}
	return strings.Join(parts, " ")
}

// Apply returns the bytes git checkout writes for the blob in (whose id,
// hex, blobID is; "" to have it computed as a SHA-1 repository's). The
// result may share memory with in, and is in itself when nothing
// changes.
//
// git writes some conversions through stream filters and others in
// core (see classify_conv_attrs in convert.c); their ident expansions
// differ for odd keywords ("$$Id$", "$Id:a b$"), and Apply follows
// whichever git uses for the path.
//
// The error is non-nil in these cases:
//   - The re-encoding fails: the blob is not UTF-8, holds a character the
//     encoding lacks, or names an encoding iconv does not know. git prints
//     an error and writes the content without re-encoding; Apply returns
//     those same bytes and an *EncodingError. It does so too, with
//     errUnknownEncoding inside, for an encoding git knows but this
//     package does not write (see encoding.go): only then do the bytes
//     differ from git's.
//   - working-tree-encoding is set (not given a value): git dies; Apply
//     returns the bytes without re-encoding and ErrEncodingAttr.
//   - ident has a keyword to expand and blobID is not 40 or 64 hex
//     digits: nil and an error.
func (c Conversion) Apply(blobID string, in []byte) ([]byte, error) {
	out := in
	if c.ident && bytes.Contains(in, []byte("$Id")) {
		if blobID == "" {
			h := sha1.New()
			fmt.Fprintf(h, "blob %d\x00", len(in))
			h.Write(in)
			blobID = hex.EncodeToString(h.Sum(nil))
		} else if !isHexID(blobID) {
			return nil, fmt.Errorf("gitattr: ident: %q is not an object id", blobID)
		}
		if c.stream {
			out = identStream(out, blobID)
		} else if countIdent(out) > 0 {
			out = identToWorktree(out, blobID)
		}
	}
	if c.crlf {
		out = crlfToWorktree(out, c.auto)
	}
	if c.err != nil {
		return out, c.err
	}
	// git re-encodes nothing that is empty (encode_to_worktree).
	if c.encName != "" && len(out) > 0 {
		if c.encoding == nil {
			return out, &EncodingError{Encoding: c.encName, Err: errUnknownEncoding}
		}
		enc, err := c.encoding.encode(out)
		if err != nil {
			return out, &EncodingError{Encoding: c.encName, Err: err}
		}
		out = enc
	}
	return out, nil
}

func isHexID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// textStat is convert.c's struct text_stat.
type textStat struct {
	nul, lonecr, lonelf, crlf int
	printable, nonprintable   int
}

// gatherStats is convert.c's gather_stats.
func gatherStats(buf []byte) textStat {
	var s textStat
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		switch {
		case c == '\r':
			if i+1 < len(buf) && buf[i+1] == '\n' {
				s.crlf++
				i++
			} else {
				s.lonecr++
			}
		case c == '\n':
			s.lonelf++
		case c == 127:
			s.nonprintable++
		case c < 32:
			switch c {
			case '\b', '\t', '\033', '\014':
				s.printable++
			case 0:
				s.nul++
				s.nonprintable++
			default:
				s.nonprintable++
			}
		default:
			s.printable++
		}
	}
	// A trailing ^Z (DOS end of file) is not held against the file.
	if len(buf) > 0 && buf[len(buf)-1] == '\032' {
		s.nonprintable--
	}
	return s
}

// isBinary is convert.c's convert_is_binary (diff.c's heuristics, and a
// lone CR makes a file binary).
func (s textStat) isBinary() bool {
	return s.lonecr > 0 || s.nul > 0 || (s.printable>>7) < s.nonprintable
}

// crlfToWorktree is convert.c's crlf_to_worktree for an action whose
// output is CRLF: every LF not already after a CR gets one. With auto
// (text=auto, core.autocrlf), a blob that is binary or has any CR is left
// alone ("the new safer autocrlf handling").
func crlfToWorktree(src []byte, auto bool) []byte {
	if len(src) == 0 {
		return src
	}
	s := gatherStats(src)
	if s.lonelf == 0 {
		return src
	}
	if auto && (s.lonecr > 0 || s.crlf > 0 || s.isBinary()) {
		return src
	}
	out := make([]byte, 0, len(src)+s.lonelf)
	for {
		nl := bytes.IndexByte(src, '\n')
		if nl < 0 {
			break
		}
		if nl > 0 && src[nl-1] == '\r' {
			out = append(out, src[:nl+1]...)
		} else {
			out = append(out, src[:nl]...)
			out = append(out, '\r', '\n')
		}
		src = src[nl+1:]
	}
	return append(out, src...)
}

// countIdent is convert.c's count_ident: how many "$Id$" and
// "$Id: ... $" the blob has (a cheap "is there anything to do").
func countIdent(cp []byte) int {
	cnt := 0
	for len(cp) > 0 {
		ch := cp[0]
		cp = cp[1:]
		if ch != '$' {
			continue
		}
		if len(cp) < 3 {
			break
		}
		if cp[0] != 'I' || cp[1] != 'd' {
			continue
		}
		ch = cp[2]
		cp = cp[3:]
		if ch == '$' {
			cnt++
		}
		if ch != ':' {
			continue
		}
		for len(cp) > 0 {
			ch = cp[0]
			cp = cp[1:]
			if ch == '$' {
				cnt++
				break
			}
			if ch == '\n' {
				break
			}
		}
	}
	return cnt
}

// identToWorktree is convert.c's ident_to_worktree: "$Id$" and git's own
// "$Id: <id> $" become "$Id: <blob id> $"; an "$Id: ... $" with inner
// spaces (another system's) and one broken by a newline are kept.
func identToWorktree(src []byte, id string) []byte {
	out := make([]byte, 0, len(src)+countIdent(src)*(len(id)+3))
	for {
		d := bytes.IndexByte(src, '$')
		if d < 0 {
			break
		}
		out = append(out, src[:d+1]...)
		src = src[d+1:]
		if len(src) < 3 || src[0] != 'I' || src[1] != 'd' {
			continue
		}
		switch src[2] {
		case '$':
			src = src[3:]
		case ':':
			e := bytes.IndexByte(src[3:], '$')
			if e < 0 {
				// An unterminated keyword: nothing more to expand.
				return append(out, src...)
			}
			e += 3
			if bytes.IndexByte(src[3:e], '\n') >= 0 {
				continue
			}
			// git searches for a space from src+4 up to the closing
			// dollar; one just before it is git's own format.
			if e > 4 {
				if sp := bytes.IndexByte(src[4:e], ' '); sp >= 0 && 4+sp < e-1 {
					continue
				}
			}
			src = src[e+1:]
		default:
			continue
		}
		out = append(out, "Id: "...)
		out = append(out, id...)
		out = append(out, " $"...)
	}
	return append(out, src...)
}

// identStream is what convert.c's ident stream filter writes: "$Id$"
// and "$Id:...$" (up to the first '$', not across a newline, and not
// another system's, with inner blanks after "$Id: ") become
// "$Id: <blob id> $". Unlike the in-core expansion it never re-reads a
// byte it consumed: in "$$Id$" the second '$' ends a failed match, so
// nothing is expanded.
func identStream(src []byte, id string) []byte {
	const head = "$Id"
	if !bytes.Contains(src, []byte(head)) {
		return src
	}
	out := make([]byte, 0, len(src)+len(id)+8)
	state := 0     // bytes of head matched
	skipping := -1 // in "$Id:...", where it started in src
	for i := 0; i < len(src); i++ {
		ch := src[i]
		if skipping >= 0 {
			if ch != '\n' && ch != '$' {
				continue
			}
			kw := src[skipping : i+1]
			if ch == '$' && !isForeignIdent(kw) {
				out = append(out, "$Id: "...)
				out = append(out, id...)
				out = append(out, " $"...)
			} else {
				out = append(out, kw...)
			}
			skipping = -1
			continue
		}
		if state < len(head) && head[state] == ch {
			state++
			continue
		}
		if state == len(head) && ch == ':' {
			skipping = i - len(head)
			state = 0
			continue
		}
		out = append(out, head[:state]...)
		if state == len(head) && ch == '$' {
			out = append(out, ": "...)
			out = append(out, id...)
			out = append(out, " $"...)
		} else {
			out = append(out, ch)
		}
		state = 0
	}
	if skipping >= 0 {
		out = append(out, src[skipping:]...)
	} else {
		out = append(out, head[:state]...)
	}
	return out
}

// isForeignIdent is convert.c's is_foreign_ident, for a keyword from
// "$Id:" to its closing '$': "$Id: " then a blank (git's isspace) not
// just before the end.
func isForeignIdent(kw []byte) bool {
	s, ok := bytes.CutPrefix(kw, []byte("$Id: "))
	if !ok {
		return false
	}
	for i, c := range s {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') && (i+1 >= len(s) || s[i+1] != '$') {
			return true
		}
	}
	return false
}
