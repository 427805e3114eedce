//go:build linux

package fs

import (
	"testing"
	"time"

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

// TestSharedIdentity: a shared file's inode number and times depend on
// its repository, blob and mode only, and stay put across versions (a
// restarted daemon must give the kernel and rsync the same ones); its
// times lie between 1980 and 1980 + 2^30 s, and differ from blob to blob.
func TestSharedIdentity(t *testing.T) {
	a, b := snapshot.ID{1, 2, 3}, snapshot.ID{1, 2, 4}
	if x, y := sharedIno("demo", snapshot.Entry{Name: "x", Kind: snapshot.File, ID: a}), sharedIno("demo", snapshot.Entry{Name: "y", Kind: snapshot.File, ID: a}); x != y {
		t.Errorf("one blob under two names: inode numbers %d and %d", x, y)
	}
	distinct := map[uint64]string{}
	for _, c := range []struct {
		what string
		ino  uint64
	}{
		{"file a", sharedIno("demo", snapshot.Entry{Kind: snapshot.File, ID: a})},
		{"executable a", sharedIno("demo", snapshot.Entry{Kind: snapshot.Executable, ID: a})},
		{"file b", sharedIno("demo", snapshot.Entry{Kind: snapshot.File, ID: b})},
		{"file a of another repository", sharedIno("other", snapshot.Entry{Kind: snapshot.File, ID: a})},
	} {
		if prev, ok := distinct[c.ino]; ok {
			t.Errorf("%s and %s share inode number %d", prev, c.what, c.ino)
		}
		distinct[c.ino] = c.what
	}
	if got, want := sharedIno("demo", snapshot.Entry{Kind: snapshot.File, ID: a}), uint64(9060874942587390750); got != want {
		t.Errorf("sharedIno of file a = %d, want %d (numbers must not change between versions)", got, want)
	}
	lo, hi := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC).Add(1<<30*time.Second)
	seen := map[int64]bool{}
	for i := 0; i < 1000; i++ {
		id := snapshot.ID{byte(i), byte(i >> 8), 7, 9, byte(i * 31)}
		tm := blobTime(id)
		if tm.Before(lo) || !tm.Before(hi) || !blobTime(id).Equal(tm) {
			t.Fatalf("blobTime(%v) = %v, want a fixed time in [%v, %v)", id, tm, lo, hi)
		}
		if seen[tm.Unix()] {
			t.Errorf("blobTime: two of 1000 blobs share second %d", tm.Unix())
		}
		seen[tm.Unix()] = true
	}
	if got := blobTime(a); got.UnixNano() != 315729921000000000 {
		t.Errorf("blobTime(a) = %d ns, want 315729921000000000 (times must not change between versions)", got.UnixNano())
	}
}
