package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitfs/gitfs/internal/pack"
)

// commit is what a snapshot takes from its commit object: the root tree
// and the committer time (every unchanged file's mtime).
type commit struct {
	tree      ID
	committed time.Time
}

// readCommit reads and parses commit id from the pinned packs.
func readCommit(ps *pack.Set, id ID) (commit, error) {
	typ, data, err := ps.Read(id)
	if err != nil {
		return commit{}, fmt.Errorf("commit: %w", err)
	}
	if typ != pack.Commit {
		return commit{}, fmt.Errorf("%s is a %s, not a commit", id, typ)
	}
	c, err := parseCommit(data)
	if err != nil {
		return commit{}, fmt.Errorf("commit %s: %w", id, err)
	}
	return c, nil
}

// parseCommit reads the tree and committer headers of a commit object.
// It is hand-written rather than go-git's object decoder because that
// package links an OpenPGP implementation (for signed commits) whose
// initialisation every gitfs process — each short 'ws' command
// included — would pay at start. Continuation lines of multi-line
// headers (gpgsig, mergetag) start with a space and never match.
func parseCommit(data []byte) (commit, error) {
	var c commit
	var haveTree, haveCommitter bool
	for len(data) > 0 {
		line := data
		rest := []byte(nil)
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, rest = data[:i], data[i+1:]
		}
		data = rest
		if len(line) == 0 {
			break // the message follows
		}
		switch {
		case bytes.HasPrefix(line, []byte("tree ")) && !haveTree:
			hex := string(line[len("tree "):])
			if len(hex) != 40 || !plumbing.IsHash(hex) {
				return commit{}, fmt.Errorf("bad tree header %q", line)
			}
			c.tree, haveTree = plumbing.NewHash(hex), true
		case bytes.HasPrefix(line, []byte("committer ")) && !haveCommitter:
			t, err := identTime(line[len("committer "):])
			if err != nil {
				return commit{}, fmt.Errorf("committer: %w", err)
			}
			c.committed, haveCommitter = t, true
		}
	}
	if !haveTree {
		return commit{}, errors.New("no tree header")
	}
	if !haveCommitter {
		return commit{}, errors.New("no committer header")
	}
	return c, nil
}

// identTime is the time of an ident, "Name <email> SECONDS ZONE", in
// UTC. The zone only says where the clock was; the instant is the
// seconds. A missing or malformed time is the epoch, as git log shows
// it: old repositories hold such commits, and refusing them would make
// them impossible to mount.
func identTime(ident []byte) (time.Time, error) {
	i := bytes.LastIndexByte(ident, '>')
	if i < 0 {
		return time.Time{}, fmt.Errorf("no email in %q", ident)
	}
	fields := bytes.Fields(ident[i+1:])
	if len(fields) == 0 {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(string(fields[0]), 10, 64)
	if err != nil {
		return time.Unix(0, 0).UTC(), nil
	}
	return time.Unix(secs, 0).UTC(), nil
}
