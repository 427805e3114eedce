package gitattr

import (
	"strings"
	"sync"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, c := range []struct {
		autocrlf, eol string
		want          Config
		err           bool
	}{
		{"", "", Config{}, false},
		{"true", "", Config{AutoCRLF: AutoCRLFTrue}, false},
		{"Yes", "CRLF", Config{AutoCRLF: AutoCRLFTrue, EOL: EOLCRLF}, false},
		{"input", "lf", Config{AutoCRLF: AutoCRLFInput, EOL: EOLLF}, false},
		{"INPUT", "native", Config{AutoCRLF: AutoCRLFInput, EOL: EOLNative}, false},
		{"off", "bogus", Config{}, false},
		{"0", "", Config{}, false},
		{"1k", "", Config{AutoCRLF: AutoCRLFTrue}, false},
		{"0x10", "", Config{AutoCRLF: AutoCRLFTrue}, false},
		{"-1", "", Config{AutoCRLF: AutoCRLFTrue}, false},
		{"maybe", "", Config{}, true},
		{"4g", "", Config{}, true},
		{"1x", "", Config{}, true},
	} {
		got, err := ParseConfig(c.autocrlf, c.eol)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("ParseConfig(%q, %q) = %+v, %v", c.autocrlf, c.eol, got, err)
		}
	}
}

// TestConfigMatchesGit: git reads the same values the same way (it
// dies on the bad ones).
func TestConfigMatchesGit(t *testing.T) {
	r := newRepo(t, []blobFile{{path: ".gitattributes", content: "*.t text\n"}, {path: "a.t", content: "a\nb\n"}})
	for _, v := range []string{"true", "Yes", "off", "0", "1k", "0x10", "-1", "010", "maybe", "4g", "1x"} {
		wt, stderr, err := clone(t, r.dir, "core.autocrlf="+v)
		cfg, perr := ParseConfig(v, "")
		if (err != nil) != (perr != nil) {
			t.Errorf("%q: git %v %s; ParseConfig %v", v, err, stderr, perr)
			continue
		}
		if err != nil {
			continue
		}
		var rs Rules
		rs.Add("", []byte("*.t text\n"))
		got, _ := rs.Lookup("a.t").Conversion(cfg).Apply("", []byte("a\nb\n"))
		file := string(mustReadFile(t, wt+"/a.t"))
		if string(got) != file {
			t.Errorf("%q: got %q, git wrote %q", v, got, file)
		}
	}
}

// TestLookupConcurrent: Lookup is safe from many goroutines (run with
// -race) and gives each the same answer.
func TestLookupConcurrent(t *testing.T) {
	var rs Rules
	rs.Add("", []byte(rootAttrs))
	rs.Add("sub", []byte(subAttrs))
	paths := []string{"a.txt", "sub/a.txt", "sub/deep/x.c", "x.bin", "doc/a/b/c.md"}
	want := make([]string, len(paths))
	for i, p := range paths {
		want[i] = fmtAttrs(rs.Lookup(p).All())
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 200; n++ {
				for i, p := range paths {
					if got := fmtAttrs(rs.Lookup(p).All()); got != want[i] {
						t.Errorf("%s: %s, want %s", p, got, want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestZeroValues(t *testing.T) {
	var r *Rules
	if !r.Lookup("a").Empty() {
		t.Fatal("nil Rules has attributes")
	}
	var rs Rules
	if !rs.Lookup("a").Empty() || !(Attrs{}).Conversion(Config{}).None() {
		t.Fatal("zero values convert")
	}
	if c := (Attrs{}).Conversion(Config{AutoCRLF: AutoCRLFTrue}); c.None() || c.String() != "eol=crlf(auto)" {
		t.Fatalf("autocrlf=true: %s", c)
	}
	rs.Add("", []byte("*.lfs filter=lfs -text\n*.f filter\n"))
	if f := rs.Lookup("x.lfs").Filter(); f != "lfs" {
		t.Fatalf("Filter = %q", f)
	}
	if f := rs.Lookup("x.f").Filter(); f != "" {
		t.Fatalf("Filter of a set attribute = %q", f)
	}
	if !strings.Contains(rs.Lookup("x.lfs").Get("text").String(), "unset") {
		t.Fatal("Get")
	}
}
