package gitattr

import (
	"bytes"
	"testing"
)

// FuzzRules: no .gitattributes content, path or blob makes the package
// panic, and Conversion.None is never wrong about Apply.
func FuzzRules(f *testing.F) {
	f.Add([]byte(rootAttrs), "sub/v-lf.txt", []byte(contents["ident"]))
	f.Add([]byte(subAttrs), "a//b/", []byte("\r\n\r"))
	f.Add([]byte("\"\\0 t\n[attr]\n[[:x:]] a\n"), "/", []byte("$Id:$"))
	f.Add([]byte("*.t working-tree-encoding=UTF-16 text\n** ident eol=crlf\n"), "x.t", []byte("a\n\xff"))
	f.Fuzz(func(t *testing.T, attrs []byte, path string, blob []byte) {
		var r Rules
		r.Add("", attrs)
		r.Add("a", attrs)
		r.Add("a/b", attrs)
		for _, cfg := range []Config{{}, {AutoCRLF: AutoCRLFTrue}, {EOL: EOLCRLF}} {
			conv := r.Lookup(path).Conversion(cfg)
			out, err := conv.Apply("", blob)
			if conv.None() && (err != nil || !bytes.Equal(out, blob)) {
				t.Fatalf("None, but Apply gave %q, %v", out, err)
			}
		}
		_ = r.Lookup(path + "/").All()
	})
}

// FuzzWildmatch: the matcher terminates without panicking on any input.
func FuzzWildmatch(f *testing.F) {
	for _, p := range trickyPatterns {
		f.Add(p, "a/b/c")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		wildmatch(pattern, text, true)
		wildmatch(pattern, text, false)
	})
}
