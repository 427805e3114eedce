package daemon

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountInfo(t *testing.T) {
	for _, tc := range []struct {
		line string
		want MountEntry
		ok   bool
	}{
		{
			line: `45 27 0:40 / /tmp/gfx/mnt rw,nosuid,nodev,relatime - fuse.gitfs gitfs rw,user_id=0,group_id=0,default_permissions,allow_other`,
			want: MountEntry{Point: "/tmp/gfx/mnt", FSType: "fuse.gitfs", Source: "gitfs", Dev: unix.Mkdev(0, 40)},
			ok:   true,
		},
		{
			// Optional fields before the separator, and an escaped space.
			line: `36 35 98:0 /mnt1 /mnt\040two rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue`,
			want: MountEntry{Point: "/mnt two", FSType: "ext3", Source: "/dev/root", Dev: unix.Mkdev(98, 0)},
			ok:   true,
		},
		{line: `36 35 98:0 /mnt1 /mnt2 rw`, ok: false},
		{line: ``, ok: false},
	} {
		got, ok := parseMountInfo(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseMountInfo(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:   "/a b",
		`/tab\011x`: "/tab\tx",
		`/back\134`: `/back\`,
		`/plain`:    "/plain",
		`/trail\04`: `/trail\04`, // truncated escape stays as it is
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUserAllowOther(t *testing.T) {
	for conf, want := range map[string]bool{
		"":                                       false,
		"#user_allow_other\n":                    false,
		"# user_allow_other\nmount_max = 1":      false,
		"user_allow_other\n":                     true,
		"mount_max = 10\n  user_allow_other  \n": true,
		"user_allow_other_not\n":                 false,
	} {
		if got := userAllowOther(conf); got != want {
			t.Errorf("userAllowOther(%q) = %v, want %v", conf, got, want)
		}
	}
}
