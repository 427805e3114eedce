//go:build linux

package fs

import (
	"testing"
	"time"
)

// TestLowerTimes: an entry shows its commit's time until an update changes
// it or a directory above it, then that update's time, and no update takes
// a time back; past its bound the record collapses to the latest time.
func TestLowerTimes(t *testing.T) {
	commit := time.Unix(1000, 0)
	u1, u2 := time.Unix(2000, 0), time.Unix(3000, 0)
	var lt lowerTimes
	lt.note([]string{"a.txt", "added"}, u1)
	lt.note([]string{"b/c.txt", "a.txt"}, u2)
	for _, tc := range []struct {
		path string
		want time.Time
	}{
		{"untouched.txt", commit},
		{"a.txt", u2},
		{"added", u1},
		{"added/deep/x", u1},
		{"b/c.txt", u2},
		{"b", commit},
		{"b/other", commit},
		{"addedX", commit},
	} {
		if got := lt.at(tc.path, commit); !got.Equal(tc.want) {
			t.Errorf("at(%q) = %v, want %v", tc.path, got.Unix(), tc.want.Unix())
		}
	}
	if got := (lowerTimes{base: u1}).at("x", commit); !got.Equal(u1) {
		t.Errorf("with a base (a restart after an update): %v, want %v", got.Unix(), u1.Unix())
	}
	big := make([]string, changedMax+1)
	for i := range big {
		big[i] = string(rune('a'+i%26)) + time.Duration(i).String()
	}
	lt.note(big, u2)
	if len(lt.changed) != 0 || !lt.at("untouched.txt", commit).Equal(u2) {
		t.Errorf("past the bound: %d paths kept, untouched at %v; want none, the latest time", len(lt.changed), lt.at("untouched.txt", commit).Unix())
	}
}
