package snapshot

import (
	"strings"
	"testing"
	"time"
)

func TestParseCommit(t *testing.T) {
	const tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
	const other = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		data    string
		want    time.Time
		wantErr string
	}{
		{name: "plain", data: "tree " + tree + "\nauthor A <a@x> 100 +0000\ncommitter C <c@x> 1704164645 +0200\n\nmsg\n",
			want: time.Unix(1704164645, 0)},
		{name: "parents and negative zone", data: "tree " + tree + "\nparent " + other + "\nparent " + other +
			"\nauthor A <a@x> 1 -0700\ncommitter C <c@x> 1700000000 -0700\n\nmerge\n", want: time.Unix(1700000000, 0)},
		{name: "signed: continuation lines do not match", data: "tree " + tree +
			"\ncommitter C <c@x> 42 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n tree " + other +
			"\n committer X <x@x> 7 +0000\n -----END PGP SIGNATURE-----\n\nmsg\n", want: time.Unix(42, 0)},
		{name: "headers in the message do not match", data: "tree " + tree + "\ncommitter C <c@x> 5 +0000\n\ntree " + other +
			"\ncommitter M <m@x> 9 +0000\n", want: time.Unix(5, 0)},
		{name: "name with angle brackets", data: "tree " + tree + "\ncommitter C <x> y <c@x> 77 +0000\n", want: time.Unix(77, 0)},
		{name: "no time", data: "tree " + tree + "\ncommitter C <c@x>\n", want: time.Unix(0, 0)},
		{name: "malformed time", data: "tree " + tree + "\ncommitter C <c@x> soon +0000\n", want: time.Unix(0, 0)},
		{name: "no final newline", data: "tree " + tree + "\ncommitter C <c@x> 3 +0000", want: time.Unix(3, 0)},
		{name: "no tree", data: "committer C <c@x> 3 +0000\n\n", wantErr: "no tree"},
		{name: "tree after the message", data: "committer C <c@x> 3 +0000\n\ntree " + tree + "\n", wantErr: "no tree"},
		{name: "short tree", data: "tree 4b825dc\ncommitter C <c@x> 3 +0000\n", wantErr: "bad tree"},
		{name: "tree not hex", data: "tree " + strings.Repeat("z", 40) + "\ncommitter C <c@x> 3 +0000\n", wantErr: "bad tree"},
		{name: "no committer", data: "tree " + tree + "\nauthor A <a@x> 1 +0000\n", wantErr: "no committer"},
		{name: "committer without email", data: "tree " + tree + "\ncommitter C 3 +0000\n", wantErr: "no email"},
		{name: "empty", data: "", wantErr: "no tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCommit([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.tree.String() != tree {
				t.Errorf("tree = %s, want %s", c.tree, tree)
			}
			if !c.committed.Equal(tt.want) || c.committed.Location() != time.UTC {
				t.Errorf("committed = %v, want %v in UTC", c.committed, tt.want.UTC())
			}
		})
	}
}
