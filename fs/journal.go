//go:build linux

package fs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The change journal answers git's fsmonitor ("which paths changed since
// token T?") so that git status in a workspace stats only what changed
// instead of every file. Every change made through the mount is noted
// after it is made, with a sequence number; a token names this daemon's
// run and a sequence number. A token of another run (the daemon
// restarted), or older than what the journal still holds, gets "/":
// everything may have changed, and git scans all — never a wrong answer.
//
// Writes do not pass through the daemon (passthrough, mmap), so a file
// opened for writing is noted when it is opened and when it is closed,
// and every answer lists the files open for writing at the time.

// A journal holds at least the last journalMax paths and at most twice
// that: trimming only when it doubled keeps a note O(1) amortized (a trim
// at every note past the bound copied 64k strings per changed path once a
// workspace had seen that many changes). A token older than its first
// entry is answered with a full scan.
const journalMax = 1 << 16

// journalMaxBytes bounds the journal the same way in bytes (each path's
// length plus its string header): paths may be 4 KiB long, so the entries'
// bound alone let one workspace's journal, filled by a user creating files
// with long paths, hold 2*64k*4 KiB = 512 MiB of the daemon's memory, and
// an answer to git that size. Past it the journal forgets its oldest
// paths, and a token older than what it holds gets a full scan, as past
// journalMax. 4 MiB holds about journalMax paths of a usual length.
const journalMaxBytes = 4 << 20

// journalEntryBytes is what a path costs the journal beyond its bytes.
const journalEntryBytes = 16

// journal is one workspace's record of changed paths.
type journal struct {
	// mu guards the fields below; a leaf.
	mu      sync.Mutex
	first   uint64   // sequence number of paths[0]
	paths   []string // paths[i] changed at first+i
	bytes   int      // what paths holds: their lengths plus journalEntryBytes each
	writers map[*upperFile]string
	linked  map[*upperFile]bool // writers of a file with more than one name
	told    uint64              // the end of the last answer (since)
}

// allChanged is the journal's entry for a change it cannot name every path
// of: one made through a name of a file with hard links changes them all,
// and the daemon knows only the names the kernel has looked up. An answer
// that covers it, or given while a linked writer is open, is a full scan.
const allChanged = "/"

func (j *journal) note(paths ...string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.paths = append(j.paths, paths...)
	for _, p := range paths {
		j.bytes += len(p) + journalEntryBytes
	}
	if len(j.paths) > 2*journalMax || j.bytes > 2*journalMaxBytes {
		over := 0
		for len(j.paths)-over > journalMax || j.bytes > journalMaxBytes {
			j.bytes -= len(j.paths[over]) + journalEntryBytes
			over++
		}
		j.first += uint64(over)
		j.paths = append(make([]string, 0, min(2*journalMax, 2*(len(j.paths)-over))), j.paths[over:]...)
	}
}

// noteWrite notes p for a write that no writer lists (inodeWriter past
// the fd budget): once for a run of writes to it, unless an answer was
// given since its last note (a token then names the end after it).
func (j *journal) noteWrite(p string) {
	j.mu.Lock()
	if n := len(j.paths); n > 0 && j.paths[n-1] == p && j.first+uint64(n) > j.told {
		j.mu.Unlock()
		return
	}
	j.mu.Unlock()
	j.note(p)
}

// since returns the paths changed after seq (the end a token names), the
// new end, and false if the journal no longer reaches back to seq.
func (j *journal) since(seq uint64) ([]string, uint64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	end := j.first + uint64(len(j.paths))
	j.told = end
	if seq < j.first || seq > end {
		return nil, end, false
	}
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(j.linked) > 0 {
		return nil, end, false
	}
	for _, p := range j.paths[seq-j.first:] {
		if p == allChanged {
			return nil, end, false
		}
		add(p)
	}
	for _, p := range j.writers {
		add(p)
	}
	sort.Strings(out)
	return out, end, true
}

// opened records f as a writer of p, a file with more than one name if
// linked (see allChanged).
func (j *journal) opened(f *upperFile, p string, linked bool) {
	j.mu.Lock()
	if j.writers == nil {
		j.writers = map[*upperFile]string{}
	}
	j.writers[f] = p
	if linked {
		if j.linked == nil {
			j.linked = map[*upperFile]bool{}
		}
		j.linked[f] = true
	}
	j.mu.Unlock()
	j.note(p)
}

// linkedTo records that n's file got another name: its open writers now
// write every name.
func (j *journal) linkedTo(n *node) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for f := range j.writers {
		if f.n == n {
			if j.linked == nil {
				j.linked = map[*upperFile]bool{}
			}
			j.linked[f] = true
		}
	}
}

func (j *journal) closed(f *upperFile) {
	j.mu.Lock()
	p, ok := j.writers[f]
	linked := j.linked[f]
	delete(j.writers, f)
	delete(j.linked, f)
	j.mu.Unlock()
	if linked {
		j.note(allChanged)
	} else if ok {
		j.note(p)
	}
}

// multiLinked reports whether fd's file has more than one name.
func multiLinked(fd int) bool {
	var st syscall.Stat_t
	return syscall.Fstat(fd, &st) == nil && st.Nlink > 1
}

// runID names this daemon's run in tokens.
var runID = func() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// Changes answers git's fsmonitor for workspace name: the paths that
// changed since token (relative to the workspace root; a directory's with
// a trailing '/': everything below it), a token for the next query, and
// full if git must scan everything instead (unknown or old token).
func (f *FS) Changes(name, token string) (next string, paths []string, full bool, err error) {
	v, err := f.get(name)
	if err != nil {
		return "", nil, false, err
	}
	seq, ok := parseToken(token)
	paths, end, complete := v.journal.since(seq)
	next = fmt.Sprintf("gitfs:%s:%d", runID, end)
	if !ok || !complete {
		return next, nil, true, nil
	}
	return next, paths, false, nil
}

func parseToken(token string) (uint64, bool) {
	rest, ok := strings.CutPrefix(token, "gitfs:"+runID+":")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// childPath is the path of name in directory n. Caller holds v.mu.
func (n *node) childPath(name string) string { return joinPath(n.relPath(), name) }

// noteIf notes paths in the journal if e (set by the handler's return)
// reports success.
func (v *view) noteIf(e *syscall.Errno, paths ...string) {
	if *e == 0 && v.ws != nil {
		v.journal.note(paths...)
	}
}

// dirPath marks p as a directory for fsmonitor: everything below it.
func dirPath(p string) string { return p + "/" }
