package pack

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
)

func truncateBy(t *testing.T, path string, n int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, max(0, st.Size()-n)); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, fromStart float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[int(float64(len(b))*fromStart)] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestChecks: each kind of damage and what CheckTrailer (cheap, on every
// open) and Verify (full, once) make of it. Damage is a *CorruptError; a
// missing file also matches os.ErrNotExist.
func TestChecks(t *testing.T) {
	r := newTestRepo(t)
	other := newTestRepo(t)
	otherBase := other.pack(t, t.TempDir(), "--delta-base-offset")
	tests := []struct {
		name        string
		damage      func(t *testing.T, base string)
		trailerOK   bool // CheckTrailer passes (it reads no more than the ends)
		verifyOK    bool
		notExist    bool
		trailerFile string // the file CheckTrailer blames
	}{
		{"healthy", func(*testing.T, string) {}, true, true, false, ""},
		{"pack truncated by one byte", func(t *testing.T, base string) { truncateBy(t, base+".pack", 1) }, false, false, false, ".pack"},
		{"pack truncated to half", func(t *testing.T, base string) {
			st, _ := os.Stat(base + ".pack")
			truncateBy(t, base+".pack", st.Size()/2)
		}, false, false, false, ".pack"},
		{"pack emptied", func(t *testing.T, base string) { truncateBy(t, base+".pack", 1<<40) }, false, false, false, ".pack"},
		{"index truncated", func(t *testing.T, base string) { truncateBy(t, base+".idx", 100) }, false, false, false, ".pack"},
		{"index emptied", func(t *testing.T, base string) { truncateBy(t, base+".idx", 1<<40) }, false, false, false, ".idx"},
		{"index of another pack", func(t *testing.T, base string) { copyFile(t, otherBase+".idx", base+".idx") }, false, false, false, ".pack"},
		{"pack swapped for another", func(t *testing.T, base string) { copyFile(t, otherBase+".pack", base+".pack") }, false, false, false, ".pack"},
		{"byte flipped mid-pack", func(t *testing.T, base string) { flipByte(t, base+".pack", 0.5) }, true, false, false, ""},
		{"pack missing", func(t *testing.T, base string) { os.Remove(base + ".pack") }, false, false, true, ".pack"},
		{"index missing", func(t *testing.T, base string) { os.Remove(base + ".idx") }, false, false, true, ".idx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := r.pack(t, t.TempDir(), "--delta-base-offset")
			tc.damage(t, base)
			check := func(what string, err error, ok bool) {
				t.Helper()
				if ok {
					if err != nil {
						t.Fatalf("%s: %v, want no error", what, err)
					}
					return
				}
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: %v, want a *CorruptError", what, err)
				}
				if errors.Is(err, os.ErrNotExist) != tc.notExist {
					t.Errorf("%s: %v matches os.ErrNotExist: %v, want %v", what, err, !tc.notExist, tc.notExist)
				}
			}
			err := CheckTrailer(base)
			check("CheckTrailer", err, tc.trailerOK)
			var ce *CorruptError
			if errors.As(err, &ce) && ce.File != filepath.Base(base)+tc.trailerFile {
				t.Errorf("CheckTrailer blames %s, want %s", ce.File, filepath.Base(base)+tc.trailerFile)
			}
			check("Verify", Verify(base), tc.verifyOK)
			readsNoWrongBytes(t, r, base, err == nil)
		})
	}
}

// readsNoWrongBytes reads every object of a possibly damaged pack: no read
// panics, and once the pack passes CheckTrailer (which callers check before
// they trust a pack: a swapped pack's index points at other objects), each
// read gives git's bytes or an error.
func readsNoWrongBytes(t *testing.T, r *testRepo, base string, trusted bool) {
	t.Helper()
	s, err := OpenSet(filepath.Dir(base), []string{filepath.Base(base)})
	if err != nil {
		return // refused whole: nothing to read
	}
	defer s.Close()
	for id, want := range r.objects {
		var got []byte
		var err error
		if want.typ == "blob" {
			var rc io.ReadCloser
			if rc, _, err = s.OpenBlob(id); err == nil {
				got, err = io.ReadAll(rc)
				rc.Close()
			}
		} else {
			_, got, err = s.Read(id)
		}
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue // an index of another pack
		}
		if trusted && err == nil && !bytes.Equal(got, want.data) {
			t.Fatalf("%s: read %d bytes that differ from git's %d, with no error", id, len(got), len(want.data))
		}
	}
}

// TestOpenRefusesIndexOutsidePack: an index whose offsets point past the
// end of its pack is refused when the pack is opened, so that no lookup
// reads outside it.
func TestOpenRefusesIndexOutsidePack(t *testing.T) {
	r := newTestRepo(t)
	base := r.pack(t, t.TempDir(), "--window=0")
	// Cut to the header and a trailer's length, so that every object
	// starts outside: cutting to half let the test pass by chance when
	// pack-objects wrote the largest object last (the ids go in in map
	// order) and every object still started inside the first half.
	if err := os.Truncate(base+".pack", headerSize+trailerSize); err != nil {
		t.Fatal(err)
	}
	_, err := Open(base)
	var ce *CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open of a pack shorter than its index: %v, want a *CorruptError", err)
	}
}
