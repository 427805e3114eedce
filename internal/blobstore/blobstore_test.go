package blobstore

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func blobID(b []byte) ID {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}

func TestPut(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("hello blob\n")
	for _, tc := range []struct {
		name    string
		id      ID
		size    int64
		content []byte
		wantErr string
	}{
		{"verified", blobID(good), int64(len(good)), good, ""},
		{"empty", blobID(nil), 0, nil, ""},
		{"other bytes", blobID(good), int64(len(good)), []byte("hello blob!"), "hash to"},
		{"short", blobID(good), int64(len(good)), good[:5], "5 bytes written"},
		{"long", blobID(good[:5]), 5, good, "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Put(tc.id, tc.size, bytes.NewReader(tc.content))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				f, err := s.Open(tc.id, tc.size)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				got, _ := io.ReadAll(f)
				if !bytes.Equal(got, tc.content) {
					t.Errorf("read back %q", got)
				}
				if fi, _ := f.Stat(); fi.Mode().Perm() != 0o444 {
					t.Errorf("mode %v, want read-only", fi.Mode())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Put: %v, want %q", err, tc.wantErr)
			}
			if tc.id != blobID(good) {
				return
			}
			// A refused write never shadows the real blob.
			if f, err := s.Open(tc.id, tc.size); err == nil {
				got, _ := io.ReadAll(f)
				f.Close()
				if !bytes.Equal(got, good) {
					t.Errorf("stored %q after a refused write", got)
				}
			}
		})
	}
	if tmps, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// TestOpenWrongSize: a file cut short (a crash before its data reached the
// disk) is not served, and goes.
func TestOpenWrongSize(t *testing.T) {
	s, _ := Open(t.TempDir())
	b := []byte("some content")
	id := blobID(b)
	if err := s.Put(id, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	os.Chmod(s.path(id), 0o644)
	if err := os.Truncate(s.path(id), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(id, int64(len(b))); !errors.Is(err, ErrNotStored) {
		t.Fatalf("Open of a short file: %v, want ErrNotStored", err)
	}
	if _, err := os.Stat(s.path(id)); !os.IsNotExist(err) {
		t.Errorf("short file still there: %v", err)
	}
	if s.Has(id, int64(len(b))) {
		t.Error("Has after removal")
	}
}

func setAtime(t *testing.T, p string, at time.Time) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), {Nsec: utimeOmit}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatal(err)
	}
}

// TestTrim: least recently used first, never a blob in use, down to the
// bound; leftovers of killed writers and of the flat layout go.
func TestTrim(t *testing.T) {
	s, _ := Open(t.TempDir())
	var ids []ID
	for i := 0; i < 6; i++ {
		b := bytes.Repeat([]byte{byte('a' + i)}, 8192)
		id := blobID(b)
		if err := s.Put(id, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		setAtime(t, s.path(id), time.Now().Add(time.Duration(i-10)*time.Hour))
		ids = append(ids, id)
	}
	old := filepath.Join(s.Dir(), "tmp", "stale")
	os.WriteFile(old, []byte("x"), 0o600)
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))
	flat := filepath.Join(s.Dir(), ids[0].String())
	os.WriteFile(flat, []byte("x"), 0o444)
	u, err := s.Usage()
	if err != nil || u.Blobs != 6 {
		t.Fatalf("usage %+v %v", u, err)
	}
	per := u.Bytes / 6
	gen0, ok := s.Generation()
	if !ok {
		t.Fatal("generation unreadable")
	}
	if r, err := s.Trim(u.Bytes, nil); err != nil || r.Removed != 0 {
		t.Fatalf("trim to what the store holds: %+v %v", r, err)
	}
	if gen, _ := s.Generation(); gen != gen0 {
		t.Errorf("a trim that removed nothing moved the generation %q -> %q", gen0, gen)
	}
	// Keep 3 blobs' worth; the oldest (ids[0]) is in use.
	r, err := s.Trim(3*per, func(id ID) bool { return id == ids[0] })
	if err != nil {
		t.Fatal(err)
	}
	if r.Removed != 3 || r.Left.Blobs != 3 {
		t.Fatalf("trim: %+v", r)
	}
	if gen, ok := s.Generation(); !ok || gen == gen0 {
		t.Errorf("a trim that removed blobs left the generation at %q (%v)", gen, ok)
	}
	for i, id := range ids {
		want := i == 0 || i >= 4
		if got := s.Has(id, 8192); got != want {
			t.Errorf("blob %d (age rank %d) kept=%v, want %v", i, i, got, want)
		}
	}
	for _, p := range []string{old, flat} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	// In use beyond the bound: kept, and said so.
	r, _ = s.Trim(0, func(ID) bool { return true })
	if r.Removed != 0 || r.KeptInUse != r.Left.Bytes {
		t.Errorf("trim with everything in use: %+v", r)
	}
}

// TestMaybeTrim: a fill's trim scans the store only when what this
// process knows of it (the last scan, plus what it published since) may
// exceed the bound, or when that scan is old; a blob another process
// stored is seen at the next scan.
func TestMaybeTrim(t *testing.T) {
	s, _ := Open(t.TempDir())
	put := func(i int) ID {
		b := bytes.Repeat([]byte{byte('a' + i)}, 8192)
		id := blobID(b)
		if err := s.Put(id, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
		setAtime(t, s.path(id), time.Now().Add(time.Duration(i-10)*time.Hour))
		return id
	}
	for i := 0; i < 4; i++ {
		put(i)
	}
	u, err := s.Usage() // a scan: 4 blobs
	if err != nil || u.Blobs != 4 {
		t.Fatalf("usage %+v %v", u, err)
	}
	per := u.Bytes / 4
	limit := 5 * per
	// Another process stores two blobs: this one does not know.
	other, _ := Open(s.Dir())
	for i := 4; i < 6; i++ {
		b := bytes.Repeat([]byte{byte('a' + i)}, 8192)
		if err := other.Put(blobID(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name        string
		do          func()
		wantScanned bool
		wantRemoved int
	}{
		{"known to fit", func() {}, false, 0},
		{"own blobs publish past the bound", func() { put(6); put(7) }, true, 3}, // 8 found
		{"fits after that trim", func() {}, false, 0},
		{"last scan too old", func() {
			other.Put(blobID([]byte("x")), 1, bytes.NewReader([]byte("x")))
			last := s.scanned.Load()
			s.scanned.Store(&scan{bytes: last.bytes, at: last.at.Add(-rescanEvery)})
		}, true, 1},
	} {
		step.do()
		r, scanned, err := s.MaybeTrim(limit, nil)
		if err != nil || scanned != step.wantScanned || r.Removed != step.wantRemoved {
			t.Errorf("%s: scanned %v, removed %d, %v; want scanned %v, removed %d",
				step.name, scanned, r.Removed, err, step.wantScanned, step.wantRemoved)
		}
	}
	if u, err := s.Usage(); err != nil || u.Bytes > limit {
		t.Errorf("left %+v %v, over the bound %d", u, err, limit)
	}
}

// TestOpenTouches: an open moves a stale atime, so that Trim sees the use.
func TestOpenTouches(t *testing.T) {
	s, _ := Open(t.TempDir())
	b := []byte("used")
	id := blobID(b)
	s.Put(id, int64(len(b)), bytes.NewReader(b))
	past := time.Now().Add(-3 * time.Hour)
	setAtime(t, s.path(id), past)
	f, err := s.Open(id, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	var st unix.Stat_t
	unix.Stat(s.path(id), &st)
	if time.Unix(st.Atim.Unix()).Before(past.Add(time.Hour)) {
		t.Errorf("atime %v not moved by Open", time.Unix(st.Atim.Unix()))
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1234", 1234, true}, {"20G", 20 << 30, true}, {"20GiB", 20 << 30, true}, {"512m", 512 << 20, true},
		{"1.5K", 1536, true}, {"0", 0, true}, {"1TB", 1 << 40, true},
		{"", 0, false}, {"-1", 0, false}, {"lots", 0, false}, {"10X", 0, false},
	} {
		got, err := ParseSize(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestCleanTemps: files of writers that are gone go; a live one's stay.
func TestCleanTemps(t *testing.T) {
	s, _ := Open(t.TempDir())
	w, err := s.Create(blobID([]byte("x")), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	dead := filepath.Join(s.Dir(), "tmp", "0123abcd-999999999-1")
	os.WriteFile(dead, nil, 0o600)
	s.CleanTemps()
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("a dead writer's file stayed: %v", err)
	}
	if _, err := os.Stat(w.File().Name()); err != nil {
		t.Errorf("a live writer's file went: %v", err)
	}
}

func TestStoredSize(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello, sizes\n")
	id := blobID(data)
	if _, ok := s.StoredSize(id); ok {
		t.Fatal("StoredSize of a blob not stored")
	}
	if err := s.Put(id, int64(len(data)), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(probe, sizeXattr, []byte("0"), 0); err != nil {
		t.Skipf("no user xattrs on this file system (%v): sizes come from the packs", err)
	}
	if n, ok := s.StoredSize(id); !ok || n != int64(len(data)) {
		t.Fatalf("StoredSize = %d, %v; want %d, true", n, ok, len(data))
	}
	// What a crash can leave: the record, and a file cut short.
	p := s.path(id)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 3); err != nil {
		t.Fatal(err)
	}
	if n, ok := s.StoredSize(id); ok {
		t.Fatalf("StoredSize of a short file = %d, true; want false", n)
	}
}

// TestOpenFDCheck: the size a caller must work out is asked for only
// when the blob is there and its record is missing or wrong, and a blob
// of another size than that is dropped.
func TestOpenFDCheck(t *testing.T) {
	data := []byte("checked sizes\n")
	id := blobID(data)
	for _, tc := range []struct {
		name      string
		stored    bool
		damage    func(t *testing.T, p string) // before the open
		want      int64                        // what the caller's size says
		wantAsked bool
		wantOK    bool
	}{
		{name: "absent", want: int64(len(data))},
		{name: "recorded", stored: true, want: 99, wantOK: true},
		{name: "no record", stored: true, damage: removeRecord, want: int64(len(data)), wantAsked: true, wantOK: true},
		{name: "no record, other size", stored: true, damage: removeRecord, want: 3, wantAsked: true},
		{name: "cut short", stored: true, damage: cutShort, want: int64(len(data)), wantAsked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if tc.stored {
				if err := s.Put(id, int64(len(data)), bytes.NewReader(data)); err != nil {
					t.Fatal(err)
				}
				if _, ok := recordedSize(s.path(id)); !ok {
					t.Skip("no user xattrs on this file system: sizes come from the packs")
				}
			}
			if tc.damage != nil {
				tc.damage(t, s.path(id))
			}
			asked := false
			fd, size, err := s.OpenFDCheck(id, func() (int64, error) { asked = true; return tc.want, nil })
			if asked != tc.wantAsked {
				t.Errorf("size asked: %v, want %v", asked, tc.wantAsked)
			}
			if !tc.wantOK {
				if !errors.Is(err, ErrNotStored) {
					t.Fatalf("OpenFDCheck: fd %d, %v; want ErrNotStored", fd, err)
				}
				if tc.stored {
					if _, err := os.Stat(s.path(id)); !os.IsNotExist(err) {
						t.Errorf("blob of the wrong size still stored: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if size != int64(len(data)) {
				t.Errorf("size %d, want %d", size, len(data))
			}
		})
	}
}

func removeRecord(t *testing.T, p string) {
	if err := unix.Removexattr(p, sizeXattr); err != nil {
		t.Fatal(err)
	}
}

func cutShort(t *testing.T, p string) {
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 3); err != nil {
		t.Fatal(err)
	}
}
