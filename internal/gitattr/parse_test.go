package gitattr

import (
	"strings"
	"testing"
)

// TestParseMatchesGit: .gitattributes files that exercise the parser
// (attr.c's parse_attr_line, read_attr_from_index), each compared with
// `git check-attr --cached -a` over a set of paths.
func TestParseMatchesGit(t *testing.T) {
	long := "x" + strings.Repeat(" ", 2040) + " t1\n"
	cases := []struct {
		name  string
		files []blobFile
	}{
		{"bom", []blobFile{{path: ".gitattributes", content: "\xef\xbb\xbfa t1\nb t2\n"}}},
		{"crlf lines", []blobFile{{path: ".gitattributes", content: "a t1\r\nb t2=v\r\n\"c\" t3\r\n"}}},
		{"nul ends the file", []blobFile{{path: ".gitattributes", content: "a t1\nb t2\x00\nc t3\n"}}},
		{"no final newline", []blobFile{{path: ".gitattributes", content: "a t1\nb t2"}}},
		{"long lines", []blobFile{{path: ".gitattributes", content: long + "b" + strings.Repeat(" ", 2043) + "t2\nc t3\n"}}},
		{"quoted", []blobFile{{path: ".gitattributes", content: `"x y" t1
"a\tb" t2
"q\"q" t3
"o\101" t4
"bad\q" t5
"\\" t6
"nl\n" t7
"a"t8
"unterminated t9
"[attr]qm" t10
"\!bang" t11
"\000x" t12
"ok\
`}}},
		{"states", []blobFile{{path: ".gitattributes", content: `a t1 -t2 !t3 t4=v t5= t6=a=b -t7=x !t8=y
a t1=late
b --t1
b t2 - t3
b t4 ! t5
b t6 = t7
c t1	t2 	 t3
d bad/name t1
e t1 t1=x -t1
`}}},
		{"macros", []blobFile{
			{path: ".gitattributes", content: `[attr]m1 t1 -t2
[attr]m2 m1 t3=x
[attr]binary -diff
[attr] t4
[attr]bad$name t5
[attr]m3 !t1 t6
[attr]m1 t7
*.m1 m1
*.m2 m2
*.b binary
*.nb -binary
*.vb binary=x
*.rb !binary
*.m3 t1 m3
*.mix m2 -t7 t3=y
`},
			{path: "d/.gitattributes", content: "[attr]m4 t8\n*.m4 m4\n*.b2 binary\n*.m1 -m1 t9\n"},
		}},
		{"precedence", []blobFile{
			{path: ".gitattributes", content: "* t1=root t2=root\n*.c t3=root\nd/e/* t4=root\n"},
			{path: "d/.gitattributes", content: "* t1=d\n*.c !t3\ne/x.c t5=d\n"},
			{path: "d/e/.gitattributes", content: "x.c t2=e\n"},
		}},
		{"negative patterns", []blobFile{{path: ".gitattributes", content: "!a t1\n\\!a t2\n* t3\n"}}},
		{"comment and blank", []blobFile{{path: ".gitattributes", content: "  # a t1\n\t\n#a t2\n a t3 # t4\n"}}},
		{"symlinked .gitattributes", []blobFile{
			{path: ".gitattributes", content: "a t1", mode: "120000"},
			{path: "d/.gitattributes", content: "b t2", mode: "120000"},
		}},
		{"trailing slash and dirs", []blobFile{{path: ".gitattributes", content: "d/ t1\nd t2\n/e/ t3\ne/f/ t4\n*/ t5\n"}}},
	}
	paths := []string{"a", "b", "c", "d", "e", "x", "x y", "a\tb", "q\"q", "oA", "bad\\q", "\\", "nl\n",
		"a.m1", "a.m2", "a.b", "a.nb", "a.vb", "a.rb", "a.m3", "a.mix", "d/a.m1", "d/a.m4", "d/a.b2",
		"x.c", "d/x.c", "d/e/x.c", "d/e/y.c", "d/y", "!a", "\\!a", "[attr]qm", "!bang", "\\!bang", "ok\\",
		"d/", "d/a", "e/", "e/f/", "e/f", "a/d/", "a/d", "d/b", "x/a", "unterminated", "\"unterminated"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRepo(t, c.files)
			compareAttrs(t, r.rules(), r.dir, paths)
		})
	}
}
