package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/snapshot"
)

// TestBatch: a Batch answers blobs in the order asked, whole or partly
// read, and names the blob when git's answer is not the one expected (a
// missing object, or reads out of order); a failed Batch stays failed,
// and Close with answers pending ends git.
func TestBatch(t *testing.T) {
	files := []gittest.File{
		{Path: "a", Content: []byte("alpha\n")},
		{Path: "b", Content: bytes.Repeat([]byte("b"), 1300<<10)}, // more than the pipe to git
		{Path: "c", Content: nil},
	}
	st, _, _, commit := setup(t, files)
	snap := leased(t, st, commit)
	ids := blobsOf(t, snap)
	a, b, c := ids["a"], ids["b"], ids["c"]
	var missing snapshot.ID
	missing[0] = 0xee

	read := func(bt *snapshot.Batch, id snapshot.ID, limit int64) (string, error) {
		var got []byte
		err := bt.Read(id, func(r io.Reader, size int64) error {
			var err error
			got, err = io.ReadAll(io.LimitReader(r, limit))
			return err
		})
		return string(got), err
	}
	for _, tc := range []struct {
		name    string
		ask     []snapshot.ID
		read    []snapshot.ID
		limit   int64  // bytes of each blob read by the callback
		wantErr string // of the last read; "" for none
	}{
		{"in order", []snapshot.ID{a, b, c}, []snapshot.ID{a, b, c}, 1 << 30, ""},
		{"partly read", []snapshot.ID{b, a}, []snapshot.ID{b, a}, 10, ""},
		{"missing", []snapshot.ID{a, missing}, []snapshot.ID{a, missing}, 1 << 30, "answered"},
		{"out of order", []snapshot.ID{a, c}, []snapshot.ID{c}, 1 << 30, "answered"},
		{"pending at close", []snapshot.ID{a, b, c}, []snapshot.ID{a}, 1 << 30, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bt, err := snap.OpenBatch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := bt.Request(tc.ask...); err != nil {
				t.Fatal(err)
			}
			var lastErr error
			for k, id := range tc.read {
				got, err := read(bt, id, tc.limit)
				lastErr = err
				if err != nil {
					if k != len(tc.read)-1 {
						t.Fatalf("read %d: %v", k, err)
					}
					break
				}
				want := string(contentOf(files, ids, id))
				if int64(len(want)) > tc.limit {
					want = want[:tc.limit]
				}
				if got != want {
					t.Errorf("read %d: %d bytes, want %d", k, len(got), len(want))
				}
			}
			switch {
			case tc.wantErr == "" && lastErr != nil:
				t.Fatalf("unexpected error: %v", lastErr)
			case tc.wantErr != "" && (lastErr == nil || !strings.Contains(lastErr.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", lastErr, tc.wantErr)
			case tc.wantErr != "":
				if _, err := read(bt, a, 1); err == nil {
					t.Error("a failed batch answered again")
				}
			}
			if err := bt.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}

// TestBatchNoGit: without git on PATH, OpenBatch says so, for the
// caller to inflate with Go.
func TestBatchNoGit(t *testing.T) {
	st, _, _, commit := setup(t, []gittest.File{{Path: "a", Content: []byte("x")}})
	snap := leased(t, st, commit)
	t.Setenv("PATH", t.TempDir())
	if _, err := snap.OpenBatch(context.Background()); !errors.Is(err, snapshot.ErrNoGit) {
		t.Fatalf("OpenBatch without git: %v, want ErrNoGit", err)
	}
}

// contentOf is the committed content of blob id.
func contentOf(files []gittest.File, ids map[string]snapshot.ID, id snapshot.ID) []byte {
	for _, f := range files {
		if ids[f.Path] == id {
			return f.Content
		}
	}
	return nil
}
