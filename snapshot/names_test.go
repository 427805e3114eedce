package snapshot

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	ok := []string{"git", ".github", ".gitignore", ".gitattributes", "foo.git", ".git2", "git~", "git~1a", "a..b", "...", "a b", "ü", `back\slash`, ".gitmodules"}
	for _, n := range ok {
		if rule := CheckName(n, File); rule != "" {
			t.Errorf("CheckName(%q) = %q, want accepted", n, rule)
		}
	}
	bad := []string{".git", ".GiT", "GIT~1", "git~2", ".git.", ".git  ", ".git:stream", "\u200d.git", ".gi\u206at", `x\.git`, `.git\x`, "..", "."}
	for _, n := range bad {
		if CheckName(n, File) == "" {
			t.Errorf("CheckName(%q) accepted, want refused", n)
		}
	}
	if CheckName(".GITMODULES.", Symlink) == "" {
		t.Errorf("symlinked .GITMODULES. accepted")
	}
	if rule := CheckName(".gitmodules", Dir); rule != "" {
		t.Errorf("directory .gitmodules refused: %q", rule)
	}
}

func TestCheckLinkTarget(t *testing.T) {
	tests := []struct{ target, rule string }{
		{"a", ""},
		{"../../etc/passwd", ""}, // pointing anywhere is allowed: never followed
		{"", RuleLinkEmpty},
		{"a\x00b", RuleLinkNUL},
		{strings.Repeat("x", PathMax), RuleLinkMax},
		{strings.Repeat("x", PathMax-1), ""},
	}
	for _, tc := range tests {
		if got := CheckLinkTarget(tc.target); got != tc.rule {
			t.Errorf("CheckLinkTarget(%.20q) = %q, want %q", tc.target, got, tc.rule)
		}
	}
}

// rawEntry is one entry of a hand-made tree body.
type rawEntry struct{ mode, name string }

func rawTree(entries ...rawEntry) []byte {
	var b bytes.Buffer
	for i, e := range entries {
		fmt.Fprintf(&b, "%s %s\x00", e.mode, e.name)
		id := sha1.Sum([]byte(fmt.Sprint(i)))
		b.Write(id[:])
	}
	return b.Bytes()
}

func file(name string) rawEntry    { return rawEntry{"100644", name} }
func dir(name string) rawEntry     { return rawEntry{"40000", name} }
func link(name string) rawEntry    { return rawEntry{"120000", name} }
func gitlink(name string) rawEntry { return rawEntry{"160000", name} }

// TestDecodeTree: each rule on the raw encoding, as readTree applies it to
// every tree anything reads.
func TestDecodeTree(t *testing.T) {
	many := func(n int) []rawEntry {
		var es []rawEntry
		for i := 0; i < n; i++ {
			es = append(es, file(fmt.Sprintf("f%03d", i)))
		}
		return es
	}
	tests := []struct {
		name     string
		body     []byte
		wantPath string // "" with wantRule "": accepted
		wantRule string
	}{
		{"ok", rawTree(file(".gitignore"), file("a-b"), dir("a"), link("l"), gitlink("m"), rawEntry{"100755", "run"}), "", ""},
		{"ok dir after names below slash", rawTree(file("a-b"), file("a.c"), dir("a"), file("a0")), "", ""},
		{"ok empty", nil, "", ""},
		{"ok at the entry limit", rawTree(many(10)...), "", ""},
		{"dotgit", rawTree(dir(".git")), ".git", RuleDotGit},
		{"dotgit alias", rawTree(dir(".GIT")), ".GIT", RuleDotGit},
		{"dotdot", rawTree(dir("..")), "..", RuleDot},
		{"dot", rawTree(file(".")), ".", RuleDot},
		{"slash", rawTree(file("a/b")), "a/b", RuleSlash},
		{"empty name", rawTree(file("")), "", RuleEmpty},
		{"name max", rawTree(file(strings.Repeat("n", 256))), strings.Repeat("n", 256), RuleNameMax},
		{"name beyond the read buffer", rawTree(file(strings.Repeat("n", 5000))), strings.Repeat("n", NameMax) + "...", RuleNameMax},
		{"symlinked gitmodules", rawTree(link(".gitmodules")), ".gitmodules", RuleGitmodules},
		{"duplicate files", rawTree(file("x"), file("x")), "x", RuleDuplicate},
		{"duplicate file and symlink", rawTree(file("x"), link("x")), "x", RuleDuplicate},
		{"duplicate file then dir", rawTree(file("a"), dir("a")), "a", RuleDuplicate},
		{"duplicate file then dir, apart", rawTree(file("a"), file("a-b"), file("a.c"), dir("a")), "a", RuleDuplicate},
		{"duplicate nested candidates", rawTree(file("a"), file("a-b"), dir("a-b"), dir("a")), "a-b", RuleDuplicate},
		{"duplicate gitlink then dir", rawTree(gitlink("m"), dir("m")), "m", RuleDuplicate},
		{"duplicate dir then file", rawTree(dir("a"), link("a")), "a", RuleDuplicate},
		{"mis-sorted", rawTree(file("b"), file("a")), "a", RuleOrder},
		{"mis-sorted dir", rawTree(dir("a"), file("a-b")), "a-b", RuleOrder},
		{"too many entries", rawTree(many(11)...), "f010", "more than 10 entries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := decodeTree(bytes.NewReader(tc.body), int64(len(tc.body)), 10)
			if tc.wantRule == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if n := bytes.Count(tc.body, []byte{0}); len(entries) != n {
					t.Fatalf("decoded %d entries, want %d", len(entries), n)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("not refused: entries %v, err %v", entries, err)
			}
			if re.Path != tc.wantPath || !strings.Contains(re.Rule, tc.wantRule) {
				t.Errorf("refused %q for %q, want %q for %q", re.Path, re.Rule, tc.wantPath, tc.wantRule)
			}
		})
	}
	for _, body := range [][]byte{[]byte("100644 a"), []byte("100644 a\x00abc"), []byte("10x644 a\x00" + strings.Repeat("x", 20))} {
		_, err := decodeTree(bytes.NewReader(body), int64(len(body)), 10)
		var re *RefusedError
		if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), "malformed tree") {
			t.Errorf("malformed body %q: err = %v, want a malformed tree error", body, err)
		}
	}
}

// TestOrderCheckMatchesReference: on random trees of names made to share
// prefixes, orderCheck agrees with the obvious check (keys strictly
// increasing, names unique), which needs a map of the whole tree.
func TestOrderCheckMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := "a-.0b"
	type ent struct {
		name string
		dir  bool
	}
	key := func(e ent) string {
		if e.dir {
			return e.name + "/"
		}
		return e.name
	}
	dups := 0
	for iter := 0; iter < 20000; iter++ {
		n := 1 + rng.Intn(7)
		es := make([]ent, n)
		for i := range es {
			l := 1 + rng.Intn(3)
			b := make([]byte, l)
			for j := range b {
				b[j] = alphabet[rng.Intn(len(alphabet))]
			}
			es[i] = ent{string(b), rng.Intn(2) == 0}
		}
		if rng.Intn(4) != 0 {
			sort.Slice(es, func(i, j int) bool { return key(es[i]) < key(es[j]) })
		}
		want := ""
		names := map[string]bool{}
		for i, e := range es {
			if i > 0 && key(es[i-1]) >= key(e) && want == "" {
				want = "bad"
			}
			if names[e.name] {
				want = "bad"
			}
			names[e.name] = true
		}
		got := ""
		var o orderCheck
		for _, e := range es {
			if rule := o.next(e.name, e.dir); rule != "" {
				got = "bad"
				break
			}
		}
		if got != want {
			t.Fatalf("tree %v: orderCheck says %q, reference %q", es, got, want)
		}
		if want != "" && sort.SliceIsSorted(es, func(i, j int) bool { return key(es[i]) < key(es[j]) }) {
			dups++
		}
	}
	if dups < 100 {
		t.Errorf("only %d sorted trees with duplicates exercised", dups)
	}
}
