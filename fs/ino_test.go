//go:build linux

package fs

import (
	"testing"

	"github.com/gitfs/gitfs/snapshot"
)

// TestInoNumbersStay: inode numbers are part of what a workspace shows
// (git's index records them; a restart must give the same ones), so the
// way they are derived never changes. The values are the first
// implementation's (sha256.New over the id and each part, NUL-ended).
func TestInoNumbersStay(t *testing.T) {
	v := &view{id: 12345}
	for _, c := range []struct {
		path string
		kind snapshot.Kind
		want uint64
	}{
		{"a", snapshot.File, 15706943773042187945},
		{"a", snapshot.Dir, 15112575747995773339},
		{"a", snapshot.Symlink, 5073205791371403171},
		{"dir/b.go", snapshot.File, 16459604086906456770},
		{"dir/b.go", snapshot.Dir, 4195266396967962365},
		{"dir/b.go", snapshot.Symlink, 15417126612368016137},
	} {
		if got := v.lowerIno(c.path, snapshot.Entry{Kind: c.kind, ID: snapshot.ID{1, 2, 3}}); got != c.want {
			t.Errorf("lowerIno(%q, %v) = %d, want %d", c.path, c.kind, got, c.want)
		}
	}
	if got := hashIno(7, "U", "42"); got != 12633689173283269658 {
		t.Errorf("hashIno(7, U, 42) = %d", got)
	}
	if got := hashIno(0, "repo", "demo"); got != 3936487216583331301 {
		t.Errorf("hashIno(0, repo, demo) = %d", got)
	}
	long := string(make([]byte, 300)) // past the stack buffer
	if hashIno(1, long) == hashIno(1, long[:299]) {
		t.Error("a long part hashes as its prefix")
	}
	if n := testing.AllocsPerRun(100, func() { v.lowerIno("dir/b.go", snapshot.Entry{ID: snapshot.ID{1}}) }); n != 0 {
		t.Errorf("lowerIno allocates %v times", n)
	}
}
