package gitattr

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// contents are blobs that exercise each conversion: line endings,
// binary detection (convert.c's gather_stats), ident keywords, text
// beyond ASCII for the encodings.
var contents = map[string]string{
	"lf":      "line one\nline two\n",
	"crlf":    "line one\r\nline two\r\n",
	"mixed":   "a\r\nb\nc\n",
	"lonecr":  "a\rb\n",
	"crcrlf":  "a\r\r\nb\n",
	"nul":     "a\x00b\nc\n",
	"noeol":   "no newline at all",
	"empty":   "",
	"nlonly":  "\n",
	"ident":   "$Id$\nx $Id: 0123 $ y\n$Id: foreign thing $\n$Id: broken\n$ $$Id$ $Id:$ $Id:x$\n$Id",
	"ident2":  "only $Id: 1111111111111111111111111111111111111111 $ here\n",
	"unicode": "héllo wörld ☃ 😀\r\nnext\n",
	"latin":   "café crème\n",
	"ctrl":    strings.Repeat("\x01\x02\x03", 5) + "text\n",
	"fewctrl": strings.Repeat("printable ", 30) + "\x01\n",
	"sub":     "dos text\n\x1a",
	"del":     "a\x7fb\n" + strings.Repeat("x", 200) + "\n",
	"invalid": "bad \xff utf-8\n",
}

const rootAttrs = `# the root file: macros are allowed here
[attr]mytext text eol=crlf
[attr]nodiff -diff -merge
[attr]chain mytext ident
*.txt text
*.bat eol=crlf
*.sh eol=lf
*.auto text=auto
*.bin binary
*.crlfauto text=auto eol=crlf
*.lfauto text=auto eol=lf
*.my mytext
*.chain chain
*.nd nodiff
*.id ident
*.idcrlf ident eol=crlf
*.u16 working-tree-encoding=UTF-16
*.u16le working-tree-encoding=UTF-16LE-BOM text eol=crlf
*.u16be working-tree-encoding=utf-16be
*.u32 working-tree-encoding=UTF-32
*.l1 working-tree-encoding=ISO-8859-1 text
*.lat working-tree-encoding=latin-1
*.k8 working-tree-encoding=KOI8-R
*.sjis working-tree-encoding=SHIFT_JIS
*.bogus working-tree-encoding=no-such-encoding
*.u8 working-tree-encoding=UTF8
*.lfs filter=lfs diff=lfs merge=lfs -text
*.lfstext filter=lfs text eol=crlf
/rootonly.txt -text
doc/**/*.md text eol=crlf
src/*.c text
[Mm]akefile text eol=crlf
dir/ text
**/gen/** -text
*.noeol text !eol
*.reset text=auto
v-lf.reset !text
"quoted name.txt" eol=crlf
legacy.crlf crlf
legacy.input crlf=input
legacy.nocrlf -crlf
*.tinput text=input
*.other text=foo crlf
*.eolval text eol=cr
  indented.txt   eol=crlf   
*.x -text text
*.y text -text
bad line with $invalid name
!negated.txt eol=crlf
*.q	eol=crlf	 ident
`

const subAttrs = `*.txt -text
*.bat !eol
[attr]notallowed text
*.na notallowed
deep/*.c eol=crlf
/anchored.txt eol=crlf
*.my -mytext
`

const deepAttrs = "* ident\r\n*.c text\r\n"

// checkoutTree is a tree with .gitattributes at three depths and a file
// for each content under each of a set of names.
func checkoutTree() []blobFile {
	files := []blobFile{
		{path: ".gitattributes", content: rootAttrs},
		{path: "sub/.gitattributes", content: subAttrs},
		{path: "sub/deep/.gitattributes", content: deepAttrs},
	}
	names := []string{
		"%s.txt", "%s.bat", "%s.sh", "%s.auto", "%s.bin", "%s.crlfauto", "%s.lfauto", "%s.my",
		"%s.chain", "%s.nd", "%s.id", "%s.idcrlf", "%s.u16", "%s.u16le", "%s.u16be", "%s.u32",
		"%s.l1", "%s.lat", "%s.k8", "%s.sjis", "%s.bogus", "%s.u8", "%s.lfs", "%s.lfstext",
		"%s.noeol", "%s.reset", "%s.tinput", "%s.other", "%s.eolval", "%s.x", "%s.y", "%s.q",
		"%s.none", "%s.na",
	}
	dirs := []string{"", "sub/", "sub/deep/", "doc/a/b/", "src/", "gen/x/", "dir/", "a/gen/"}
	keys := make([]string, 0, len(contents))
	for k := range contents {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, d := range dirs {
		for _, n := range names {
			for _, k := range keys {
				// Every content where the rules differ most, a few
				// elsewhere (there the patterns are the point).
				if d != "" && d != "sub/" && d != "sub/deep/" && k != "lf" && k != "crlf" && k != "mixed" && k != "ident" {
					continue
				}
				files = append(files, blobFile{path: d + fmt.Sprintf(n, "v-"+k), content: contents[k]})
			}
		}
	}
	for _, p := range []string{
		"rootonly.txt", "sub/rootonly.txt", "doc/x.md", "doc/a/b/c.md", "src/a.c", "src/x/a.c",
		"sub/deep/a.c", "sub/deep/deeper/a.c", "sub/anchored.txt", "sub/x/anchored.txt",
		"Makefile", "makefile", "sub/Makefile", "quoted name.txt", "legacy.crlf", "legacy.input",
		"legacy.nocrlf", "indented.txt", "negated.txt", "dir/x", "gen/a", "a/b/gen/c/d",
	} {
		files = append(files, blobFile{path: p, content: contents["lf"]})
	}
	files = append(files,
		blobFile{path: "link.txt", content: "v-lf.txt", mode: "120000"},
		// git reads a symlinked .gitattributes from the index: its target.
		blobFile{path: "sym/.gitattributes", content: "*.t eol=crlf", mode: "120000"},
		blobFile{path: "sym/a.t", content: contents["lf"]})
	return files
}

// checkoutConfigs are the configurations the oracle clones with: -c
// options and this package's Config for them.
var checkoutConfigs = []struct {
	git []string
	cfg Config
}{
	{nil, Config{}},
	{[]string{"core.autocrlf=true"}, Config{AutoCRLF: AutoCRLFTrue}},
	{[]string{"core.autocrlf=input"}, Config{AutoCRLF: AutoCRLFInput}},
	{[]string{"core.eol=crlf"}, Config{EOL: EOLCRLF}},
	{[]string{"core.eol=lf"}, Config{EOL: EOLLF}},
	{[]string{"core.eol=native"}, Config{EOL: EOLNative}},
	{[]string{"core.autocrlf=true", "core.eol=lf"}, Config{AutoCRLF: AutoCRLFTrue, EOL: EOLLF}},
	{[]string{"core.autocrlf=input", "core.eol=crlf"}, Config{AutoCRLF: AutoCRLFInput, EOL: EOLCRLF}},
	{[]string{"core.autocrlf=false", "core.eol=crlf"}, Config{EOL: EOLCRLF}},
}

// TestCheckoutMatchesGit: for every path of the tree, Lookup equals
// `git check-attr -a`, and under every configuration Apply(blob) equals
// the file a real clone wrote.
func TestCheckoutMatchesGit(t *testing.T) {
	r := newRepo(t, checkoutTree())
	rs := r.rules()
	var paths []string
	for p := range r.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	compareAttrs(t, rs, r.dir, append(paths, "sub/", "dir/", "sub/deep/", "gen/", "a/gen/x/", "nonexistent/v-lf.txt"))

	for _, c := range checkoutConfigs {
		t.Run(strings.Join(append([]string{"default"}, c.git...), ","), func(t *testing.T) {
			t.Parallel()
			wt, stderr, err := clone(t, r.dir, c.git...)
			if err != nil {
				t.Fatalf("clone: %v: %s", err, stderr)
			}
			compareCheckout(t, r, rs, wt, c.cfg)
		})
	}
}

// knownDivergent are the files whose encoding git converts and Apply
// cannot (it reports an *EncodingError instead).
func knownDivergent(p string) bool { return strings.HasSuffix(p, ".sjis") }

func compareCheckout(t *testing.T, r *repo, rs *Rules, wt string, cfg Config) {
	t.Helper()
	bad := 0
	for p, f := range r.files {
		if f.mode == "120000" {
			continue // a symlink: no conversion
		}
		want, err := os.ReadFile(filepath.Join(wt, p))
		if err != nil {
			t.Fatal(err)
		}
		conv := rs.Lookup(p).Conversion(cfg)
		got, err := conv.Apply(r.blobs[p], []byte(f.content))
		var encErr *EncodingError
		if err != nil && !errors.As(err, &encErr) {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if conv.None() && !bytes.Equal(got, []byte(f.content)) {
			t.Errorf("%s: None but Apply changed it", p)
		}
		if knownDivergent(p) {
			if len(f.content) > 0 && err == nil {
				t.Errorf("%s: expected an EncodingError", p)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			if bad < 15 {
				t.Errorf("%s (%s, err %v):\n  got %q\n  git %q", p, conv, err, got, want)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d files differ from the clone's", bad)
	}
}

// TestIdentComputesBlobID: without a blob id Apply hashes the blob (as
// git does, SHA-1).
func TestIdentComputesBlobID(t *testing.T) {
	r := newRepo(t, []blobFile{{path: ".gitattributes", content: "* ident\n"}, {path: "a", content: contents["ident"]}})
	wt, stderr, err := clone(t, r.dir)
	if err != nil {
		t.Fatalf("clone: %v: %s", err, stderr)
	}
	want, _ := os.ReadFile(filepath.Join(wt, "a"))
	got, err := r.rules().Lookup("a").Conversion(Config{}).Apply("", []byte(contents["ident"]))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("got %q, %v; git %q", got, err, want)
	}
	if _, err := r.rules().Lookup("a").Conversion(Config{}).Apply("xyz", []byte("$Id$")); err == nil {
		t.Fatal("a bad blob id was accepted")
	}
	if got, err := r.rules().Lookup("a").Conversion(Config{}).Apply("xyz", []byte("no keyword")); err != nil || string(got) != "no keyword" {
		t.Fatal("a bad blob id was accepted")
	}
}

// TestEncodingAttrTrueDies: git refuses to check out a tree where
// working-tree-encoding is set; Apply says so. (Unset is covered by the
// main tree: git reads it as no encoding.)
func TestEncodingAttrTrueDies(t *testing.T) {
	for _, attr := range []string{"working-tree-encoding"} {
		r := newRepo(t, []blobFile{{path: ".gitattributes", content: "*.t " + attr + "\n"}, {path: "a.t", content: "x\n"}})
		_, stderr, err := clone(t, r.dir)
		if err == nil || !strings.Contains(stderr, "no valid working-tree-encodings") {
			t.Fatalf("%s: git clone: %v, %s", attr, err, stderr)
		}
		_, err = r.rules().Lookup("a.t").Conversion(Config{}).Apply("", []byte("x\n"))
		if !errors.Is(err, ErrEncodingAttr) {
			t.Fatalf("%s: Apply: %v", attr, err)
		}
	}
}
