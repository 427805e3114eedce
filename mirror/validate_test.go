package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"demo", true},
		{"Demo_1.2-x", true},
		{"_x", true},
		{"a..b", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-flag", false},
		{"a/b", false},
		{"../x", false},
		{"x/..", false},
		{"a b", false},
		{"a\x00b", false},
		{"demo.git", false},
		{strings.Repeat("x", 101), false},
	}
	for _, tc := range tests {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	dir := t.TempDir()
	cwd, _ := os.Getwd()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{dir, dir, true},
		{"file:///x/y.git", "file:///x/y.git", true},
		{"https://example.com/a.git", "https://example.com/a.git", true},
		{"git@example.com:a/b.git", "git@example.com:a/b.git", true},
		{"ssh://git@example.com/a", "ssh://git@example.com/a", true},
		{".", cwd, true},
		{"", "", false},
		{filepath.Join(dir, "missing"), "", false},
		{"./no/such/dir:x", "", false}, // a slash before the colon: a path
	}
	for _, tc := range tests {
		got, err := normalizeURL(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("normalizeURL(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestIsShortSHA(t *testing.T) {
	for s, want := range map[string]bool{
		"":                      false,
		"abc":                   false,
		"abcd":                  true,
		"ABCD":                  true,
		"0123456789abcdefAB":    true,
		"abcg":                  false,
		"abc/":                  false,
		"abc:":                  false,
		"abc@":                  false,
		"abc`":                  false,
		strings.Repeat("a", 39): true,
		strings.Repeat("a", 40): false,
	} {
		if got := isShortSHA(s); got != want {
			t.Errorf("isShortSHA(%q) = %v, want %v", s, got, want)
		}
	}
}
