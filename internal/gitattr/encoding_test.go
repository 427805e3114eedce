package gitattr

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// glibcIconv converts in with the iconv(1) of this host: the glibc iconv
// git itself calls. With omit (-c), characters the target lacks are
// dropped instead of failing the conversion.
func glibcIconv(t *testing.T, to string, in []byte, omit bool) ([]byte, error) {
	t.Helper()
	args := []string{"-f", "UTF-8", "-t", to}
	if omit {
		args = append([]string{"-c"}, args...)
	}
	cmd := exec.Command("iconv", args...)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && !(omit && len(out) > 0) {
		return nil, err
	}
	return out, nil
}

func needIconv(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("iconv"); err != nil {
		t.Skip("iconv(1) not installed")
	}
}

// TestEncodingNamesGlibc: every name this package knows is one glibc
// knows, and writes an ASCII-and-Latin sample as glibc does.
func TestEncodingNamesGlibc(t *testing.T) {
	needIconv(t)
	names := make([]string, 0, len(encodings()))
	for n := range encodings() {
		names = append(names, n)
	}
	sort.Strings(names)
	sample := []byte("Hello, world 0123\n")
	for _, n := range names {
		want, err := glibcIconv(t, n, sample, false)
		if err != nil {
			t.Errorf("%s: glibc: %v", n, err)
			continue
		}
		got, err := encodings()[n].encode(sample)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, %v; glibc %x", n, got, err, want)
		}
	}
}

// TestEncodingTablesGlibc compares, for every encoding this package
// writes, the bytes of every BMP code point (and a sample beyond) with
// glibc's, including which ones cannot be represented at all.
func TestEncodingTablesGlibc(t *testing.T) {
	needIconv(t)
	if testing.Short() {
		t.Skip("slow")
	}
	var runes []rune
	for r := rune(1); r < 0x10000; r++ {
		if r == '\n' || (r >= 0xd800 && r < 0xe000) {
			continue
		}
		runes = append(runes, r)
	}
	for r := rune(0x10000); r <= 0x10ffff; r += 97 {
		runes = append(runes, r)
	}
	seen := map[*wtEncoding]bool{}
	names := make([]string, 0, len(encodings()))
	for n := range encodings() {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := encodings()[n]
		if seen[e] {
			continue
		}
		seen[e] = true
		t.Run(e.name, func(t *testing.T) {
			if strings.HasPrefix(e.name, "UTF") || strings.HasPrefix(e.name, "UCS") || e.name == "UNICODE" {
				testUnicodeTable(t, e, runes)
				return
			}
			nl, err := e.encode([]byte("\n"))
			if err != nil || len(nl) != 1 {
				t.Fatalf("newline: %x %v", nl, err)
			}
			var in bytes.Buffer
			for _, r := range runes {
				in.WriteRune(r)
				in.WriteByte('\n')
			}
			out, err := glibcIconv(t, e.name, in.Bytes(), true)
			if err != nil {
				t.Fatalf("glibc: %v", err)
			}
			lines := bytes.Split(out, nl)
			if len(lines) != len(runes)+1 {
				t.Fatalf("glibc gave %d lines for %d runes", len(lines)-1, len(runes))
			}
			bad := 0
			for i, r := range runes {
				got, err := e.encode([]byte(string(r)))
				if err != nil {
					got = nil
				}
				if !bytes.Equal(got, lines[i]) {
					if bad < 10 {
						t.Errorf("U+%04X: got %x, glibc %x", r, got, lines[i])
					}
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d code points differ", bad, len(runes))
			}
		})
	}
}

func testUnicodeTable(t *testing.T, e *wtEncoding, runes []rune) {
	var in bytes.Buffer
	for _, r := range runes {
		if strings.Contains(e.name, "UCS") || e.name == "UNICODE" {
			if r >= 0x10000 {
				continue
			}
		}
		in.WriteRune(r)
	}
	want, err := glibcIconv(t, e.name, in.Bytes(), false)
	if strings.HasSuffix(e.name, "-BOM") {
		// git's own: glibc's UTF-16LE/BE after a mark.
		base := strings.TrimSuffix(e.name, "-BOM")
		want, err = glibcIconv(t, base, in.Bytes(), false)
		bom, _ := glibcIconv(t, base, []byte("\ufeff"), false)
		want = append(bom, want...)
	}
	if err != nil {
		t.Fatalf("glibc: %v", err)
	}
	got, err := e.encode(in.Bytes())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("differs from glibc (err %v, %d vs %d bytes)", err, len(got), len(want))
	}
	// What cannot be converted fails in both.
	for _, bad := range [][]byte{[]byte("a\xffb"), []byte("\xed\xa0\x80"), []byte("\xc0\xaf"), []byte("a\xe2\x82")} {
		if _, gerr := glibcIconv(t, e.name, bad, false); gerr == nil {
			t.Errorf("glibc converts %x", bad)
		}
		if _, err := e.encode(bad); err == nil {
			t.Errorf("%x converts", bad)
		}
	}
	if strings.Contains(e.name, "UCS") || e.name == "UNICODE" {
		astral := []byte(string(rune(0x1f600)))
		if _, gerr := glibcIconv(t, e.name, astral, false); gerr == nil {
			t.Errorf("glibc converts U+1F600")
		}
		if _, err := e.encode(astral); err == nil {
			t.Errorf("U+1F600 converts")
		}
	}
	_ = utf8.RuneError
}
