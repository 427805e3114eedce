package gitdir

import (
	"strings"
	"testing"
	"time"
)

const (
	a = "1111111111111111111111111111111111111111"
	b = "2222222222222222222222222222222222222222"
	c = "3333333333333333333333333333333333333333"
)

// TestPackedRefs: a fetch replaces origin's branches, adds new tags, keeps
// the user's refs; a fresh git dir gets the local HEAD branch.
func TestPackedRefs(t *testing.T) {
	refs := []Ref{{Name: "refs/heads/main", ID: a}, {Name: "refs/heads/dev", ID: b}, {Name: "refs/tags/v1", ID: c, Peeled: a}, {Name: "refs/tags/bad name", ID: a}, {Name: "refs/heads/x", ID: "nope"}}
	fresh, cfg := PackedRefs(nil, refs, "refs/heads/main", true)
	want := "# pack-refs with: peeled fully-peeled sorted \n" +
		a + " refs/heads/main\n" + b + " refs/remotes/origin/dev\n" + a + " refs/remotes/origin/main\n" + c + " refs/tags/v1\n^" + a + "\n"
	if string(fresh) != want {
		t.Errorf("fresh packed-refs:\n%s\nwant:\n%s", fresh, want)
	}
	if cfg != "[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n" {
		t.Errorf("branch config %q", cfg)
	}
	user := string(fresh) + b + " refs/heads/topic\n" + b + " refs/tags/mine\n" + a + " refs/remotes/origin/gone\n"
	later, cfg := PackedRefs([]byte(user), []Ref{{Name: "refs/heads/main", ID: b}, {Name: "refs/tags/v1", ID: b}, {Name: "refs/tags/v2", ID: b}}, "refs/heads/main", false)
	got := string(later)
	for _, w := range []string{a + " refs/heads/main\n", b + " refs/heads/topic\n", b + " refs/tags/mine\n", b + " refs/remotes/origin/main\n", c + " refs/tags/v1\n^" + a, b + " refs/tags/v2\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("after a fetch, packed-refs lacks %q:\n%s", w, got)
		}
	}
	for _, gone := range []string{"origin/gone", "origin/dev"} {
		if strings.Contains(got, gone) {
			t.Errorf("after a fetch, packed-refs keeps %s:\n%s", gone, got)
		}
	}
	if cfg != "" {
		t.Errorf("an update adds branch config %q", cfg)
	}
}

func TestConfigAndLog(t *testing.T) {
	cfg := Config(`/srv/a "b"`, Speedups{})
	if !strings.Contains(cfg, `url = "/srv/a \"b\""`) || strings.Contains(cfg, "fsmonitor") || strings.Contains(cfg, "untracked") {
		t.Errorf("config:\n%s", cfg)
	}
	if cfg := Config("u", Speedups{FSMonitor: "'gitfs' fsmonitor", UntrackedCache: true}); !strings.Contains(cfg, "fsmonitorHookVersion = 2") || !strings.Contains(cfg, "untrackedCache = true") {
		t.Errorf("config with fsmonitor:\n%s", cfg)
	}
	e := HeadLogEntry("", "main", a, time.Unix(5, 0))
	if e != strings.Repeat("0", 40)+" "+a+" gitfs <gitfs@localhost> 5 +0000\tcheckout: moving from main to "+a+"\n" {
		t.Errorf("log entry %q", e)
	}
	if OriginHEAD("refs/heads/main") != "ref: refs/remotes/origin/main\n" || OriginHEAD("") != "" || OriginHEAD("refs/tags/x") != "" {
		t.Error("OriginHEAD")
	}
}

func TestIsID(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef01234567", true},
		{"0123456789ABCDEF0123456789abcdef01234567", false}, // git writes lower case
		{"0123456789abcdef0123456789abcdef0123456", false},
		{"0123456789abcdef0123456789abcdef012345678", false},
		{"0123456789abcdef0123456789abcdef0123456g", false},
		{"", false},
		{"ref: refs/heads/main\n0123456789abcdef0123", false},
	} {
		if got := IsID(tc.s); got != tc.want {
			t.Errorf("IsID(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}
