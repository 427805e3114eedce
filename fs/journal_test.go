//go:build linux

package fs

import (
	"fmt"
	"strings"
	"testing"
)

// TestJournal: a token gives exactly what changed after it; open writers
// are always listed; a token the journal no longer reaches, or of another
// run, asks for a full scan.
func TestJournal(t *testing.T) {
	var j journal
	_, start, ok := j.since(0)
	if !ok || start != 0 {
		t.Fatalf("empty journal: %d %v", start, ok)
	}
	j.note("a", "b/")
	got, end, ok := j.since(start)
	if !ok || strings.Join(got, ",") != "a,b/" || end != 2 {
		t.Errorf("since start: %v %d %v", got, end, ok)
	}
	j.note("c", "a")
	if got, _, _ := j.since(end); strings.Join(got, ",") != "a,c" {
		t.Errorf("since 2: %v, want a,c (deduplicated, sorted)", got)
	}
	w := &upperFile{}
	j.opened(w, "open.txt", false)
	_, mid, _ := j.since(0)
	if got, _, _ := j.since(mid); strings.Join(got, ",") != "open.txt" {
		t.Errorf("an open writer is listed in every answer: %v", got)
	}
	j.closed(w)
	_, afterClose, _ := j.since(0)
	if got, _, _ := j.since(afterClose); len(got) != 0 {
		t.Errorf("after close and a new token: %v", got)
	}
	if _, _, ok := j.since(afterClose + 5); ok {
		t.Error("a token from the future was trusted")
	}
	for i := 0; i < 2*journalMax+10; i++ {
		j.note(fmt.Sprint(i))
	}
	if _, _, ok := j.since(1); ok {
		t.Error("a token older than the journal was trusted")
	}
	if _, ok := parseToken("gitfs:otherrun:5"); ok {
		t.Error("a token of another run was trusted")
	}
	if n, ok := parseToken(fmt.Sprintf("gitfs:%s:7", runID)); !ok || n != 7 {
		t.Errorf("own token: %d %v", n, ok)
	}
	for _, bad := range []string{"", "/", "gitfs:" + runID + ":x", "gitfs:" + runID + ":-1"} {
		if _, ok := parseToken(bad); ok {
			t.Errorf("token %q trusted", bad)
		}
	}
}

// TestJournalNoteAmortized: once the journal is at its bound, a note does
// not copy what it holds (it did, 64k strings per changed path, which made
// every ws update and write-open of a busy workspace cost milliseconds).
func TestJournalNoteAmortized(t *testing.T) {
	var j journal
	for i := 0; i < 2*journalMax; i++ {
		j.note("p")
	}
	if allocs := testing.AllocsPerRun(1000, func() { j.note("q") }); allocs != 0 {
		t.Errorf("a note at the bound allocates %v times a note, want 0 on average", allocs)
	}
	if _, _, ok := j.since(j.first + uint64(len(j.paths)) - journalMax); !ok {
		t.Error("the journal no longer reaches back journalMax paths")
	}
}

// TestJournalBytesBounded: the journal is bounded in bytes too, not only
// in paths: long paths (up to 4 KiB) no longer let one workspace's journal
// grow to hundreds of MiB. Past the bound it forgets its oldest paths, an
// old token gets a full scan, a recent one still its exact answer.
func TestJournalBytesBounded(t *testing.T) {
	var j journal
	long := strings.Repeat("d/", 2000) + "f" // 4001 bytes
	for i := 0; i < 2*journalMax; i++ {
		j.note(long)
	}
	held := 0
	for _, p := range j.paths {
		held += len(p)
	}
	if held > 2*journalMaxBytes {
		t.Errorf("the journal holds %d bytes of paths, over its bound %d", held, 2*journalMaxBytes)
	}
	if held != j.bytes-len(j.paths)*journalEntryBytes {
		t.Errorf("the journal counts %d bytes, holds %d", j.bytes, held+len(j.paths)*journalEntryBytes)
	}
	if _, _, ok := j.since(0); ok {
		t.Error("a token older than what the journal still holds was trusted")
	}
	_, end, _ := j.since(j.first)
	j.note("new.txt")
	if got, _, ok := j.since(end); !ok || strings.Join(got, ",") != "new.txt" {
		t.Errorf("a recent token: %v %v, want new.txt", got, ok)
	}
}
