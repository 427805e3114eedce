package mirror

import (
	"io"
	"log/slog"
	"os"
	"testing"
)

func TestAccessAllows(t *testing.T) {
	g := uint32(500)
	for _, c := range []struct {
		a      Access
		uid    uint32
		gid    uint32
		groups []uint32
		want   bool
	}{
		{Access{Owner: 1000}, 1000, 1000, nil, true},
		{Access{Owner: 1000}, 0, 0, nil, true},
		{Access{Owner: 1000}, 1001, 1001, nil, false},
		{Access{Owner: 1000}, 1001, 500, []uint32{500}, false},
		{Access{Owner: 1000, Group: &g}, 1001, 500, nil, true},
		{Access{Owner: 1000, Group: &g}, 1001, 1001, []uint32{7, 500}, true},
		{Access{Owner: 1000, Group: &g}, 1001, 1001, []uint32{7}, false},
		{Access{Owner: 1000, Public: true}, 1001, 1001, nil, true},
	} {
		if got := c.a.Allows(c.uid, c.gid, c.groups); got != c.want {
			t.Errorf("%+v.Allows(%d, %d, %v) = %v, want %v", c.a, c.uid, c.gid, c.groups, got, c.want)
		}
	}
}

// TestAccessRecord: a repository without a record belongs to its mirror
// directory's owner; a record survives and is what Access returns.
func TestAccessRecord(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Access("nope"); err == nil {
		t.Error("access of an unknown repository succeeded")
	}
	if err := s.SetAccess("nope", Access{}); err == nil {
		t.Error("set access of an unknown repository succeeded")
	}
	if err := os.Mkdir(s.mirrorDir("demo"), 0o700); err != nil {
		t.Fatal(err)
	}
	a, err := s.Access("demo")
	if err != nil || a.Public || a.Group != nil || a.Owner != uint32(os.Getuid()) {
		t.Fatalf("default access %+v %v", a, err)
	}
	g := uint32(42)
	want := Access{Owner: 7, Group: &g, Public: true}
	if err := s.SetAccess("demo", want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Access("demo")
	if err != nil || got.Owner != 7 || got.Group == nil || *got.Group != 42 || !got.Public {
		t.Errorf("access %+v %v, want %+v", got, err, want)
	}
	if m := got.Mode(); m != 0o755 {
		t.Errorf("public mode %o", m)
	}
	if m := (Access{Group: &g}).Mode(); m != 0o750 {
		t.Errorf("group mode %o", m)
	}
	if m := (Access{}).Mode(); m != 0o700 {
		t.Errorf("private mode %o", m)
	}
}
