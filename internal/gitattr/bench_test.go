package gitattr

import (
	"fmt"
	"strings"
	"testing"
)

// gitRootAttrs is git/git's root .gitattributes (2025), a realistic
// root file: 43 lines of basename, anchored and "**" patterns.
const gitRootAttrs = `* whitespace=trail,space
*.[ch] whitespace=indent,trail,space,incomplete diff=cpp
*.sh whitespace=indent,trail,space,incomplete text eol=lf
*.perl text eol=lf diff=perl
*.pl text eol=lf diff=perl
*.pm text eol=lf diff=perl
*.py text eol=lf diff=python
*.bat text eol=crlf
CODE_OF_CONDUCT.md -whitespace
/Documentation/**/*.adoc text eol=lf whitespace=trail,space,incomplete
/command-list.txt text eol=lf
/GIT-VERSION-GEN text eol=lf
/mergetools/* text eol=lf
/t/oid-info/* text eol=lf
/Documentation/git-merge.adoc conflict-marker-size=32
/Documentation/gitk.adoc conflict-marker-size=32
/t/t????-*.sh conflict-marker-size=32
/templates/hooks/*.sample whitespace=indent,trail,space,incomplete text eol=lf
`

const nestedAttrs = `t[0-9][0-9][0-9][0-9]/* -whitespace
/chainlint/*.expect eol=lf -whitespace
/t0110/url-* binary
/t3206/* eol=lf
/t4013/* eol=lf
/t4034/*/* eol=lf
/t9*/*.dump eol=lf
*.png binary
*.lfs filter=lfs diff=lfs merge=lfs -text
`

// benchTree is 100k paths, 4 to 7 levels deep, with varied extensions.
func benchTree() []string {
	exts := []string{".c", ".h", ".go", ".sh", ".txt", ".md", ".bat", ".py", ".png", ".json", "", ".adoc"}
	paths := make([]string, 0, 100_000)
	for i := 0; len(paths) < 100_000; i++ {
		dir := fmt.Sprintf("src/pkg%d/sub%d", i%50, i%7)
		if i%3 == 0 {
			dir = fmt.Sprintf("t/t%04d/d%d/e%d", i%900, i%5, i%3)
		}
		if i%11 == 0 {
			dir = fmt.Sprintf("Documentation/x%d", i%13)
		}
		paths = append(paths, fmt.Sprintf("%s/file_%d%s", dir, i, exts[i%len(exts)]))
	}
	return paths
}

func benchRules(nested bool) *Rules {
	var r Rules
	r.Add("", []byte(gitRootAttrs))
	if nested {
		r.Add("t", []byte(nestedAttrs))
		r.Add("src/pkg1", []byte(nestedAttrs))
		r.Add("Documentation", []byte("*.adoc text\n*.txt -text\n"))
		r.Add("t/t0001", []byte("* eol=crlf\n"))
	}
	return &r
}

// BenchmarkLookup100k walks 100k paths once per iteration, as a tree
// walker does: ns/op is the time for the whole tree.
func BenchmarkLookup100k(b *testing.B) {
	paths := benchTree()
	for _, c := range []struct {
		name  string
		rules *Rules
	}{
		{"none", &Rules{}},
		{"root", benchRules(false)},
		{"root+4nested", benchRules(true)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				for _, p := range paths {
					if !c.rules.Lookup(p).Conversion(Config{}).None() {
						n++
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(paths)), "ns/path")
			_ = n
		})
	}
}

// BenchmarkApplyNone is the common case: a blob that needs nothing.
func BenchmarkApplyNone(b *testing.B) {
	blob := []byte(strings.Repeat("line\n", 1000))
	var c Conversion
	for i := 0; i < b.N; i++ {
		if _, err := c.Apply("", blob); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyCRLF converts a 5 KB text blob (text eol=crlf).
func BenchmarkApplyCRLF(b *testing.B) {
	blob := []byte(strings.Repeat("line\n", 1000))
	var r Rules
	r.Add("", []byte("*.bat text eol=crlf\n"))
	c := r.Lookup("x.bat").Conversion(Config{})
	b.SetBytes(int64(len(blob)))
	for i := 0; i < b.N; i++ {
		if _, err := c.Apply("", blob); err != nil {
			b.Fatal(err)
		}
	}
}
