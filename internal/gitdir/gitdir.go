// Package gitdir writes the files of a git dir the way git itself would
// have after a clone: config, packed-refs, HEAD's reflog entry. Its
// functions are pure (bytes in, bytes out), so that a workspace's git dir
// (package workspace, written through directory descriptors as its owner)
// and a checkout's (package materialize, written beneath its target) are
// made by the same code.
package gitdir

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Ref is one ref of a repository: a branch (refs/heads/*) or a tag
// (refs/tags/*).
type Ref struct {
	Name   string // refs/heads/main, refs/tags/v1
	ID     string // the object it names
	Peeled string // for an annotated tag: the object it points to; else ""
}

// IsID reports whether s is a full object id in lower-case hex, as git
// writes them: the one check of the project's (mirror.IsFullSHA and
// workspace.IsCommitID are this). By hand: a regexp took 2 ms of each ws
// update on git.git, checking the ids of its thousand tags three times.
func IsID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Speedups are what a git dir's config may add to a clone's.
type Speedups struct {
	// FSMonitor is the command git asks what changed (core.fsmonitor,
	// hook protocol 2); "" for none.
	FSMonitor string
	// UntrackedCache keeps directory listings in the index, so that
	// untracked files are found without reading unchanged directories
	// (the first git status then rewrites the index to add it).
	UntrackedCache bool
}

// Config is .git/config of a clone of url, with speedups.
func Config(url string, sp Speedups) string {
	var b strings.Builder
	b.WriteString("[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n")
	if sp.UntrackedCache {
		b.WriteString("\tuntrackedCache = true\n")
	}
	if sp.FSMonitor != "" {
		fmt.Fprintf(&b, "\tfsmonitor = %s\n\tfsmonitorHookVersion = 2\n", Quote(sp.FSMonitor))
	}
	fmt.Fprintf(&b, "[remote \"origin\"]\n\turl = %s\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n", Quote(url))
	return b.String()
}

// Quote quotes a value for git's config file.
func Quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// PackedRefs merges refs, as a fetch into a clone would, into old (the
// current packed-refs, nil if none): the remote's branches become
// refs/remotes/origin/*, replacing all of those; its tags are added where
// no tag of that name exists; every other ref (the user's branches and
// tags) is kept. A fresh git dir also gets the local branch a clone checks
// out — head, the remote's HEAD branch — and branchConfig is the config
// section that makes it track origin ("" otherwise).
func PackedRefs(old []byte, refs []Ref, head string, fresh bool) (packed []byte, branchConfig string) {
	type entry struct{ id, peeled string }
	cur := map[string]entry{}
	var last string
	for _, ln := range strings.Split(string(old), "\n") {
		switch {
		case strings.HasPrefix(ln, "^") && last != "":
			e := cur[last]
			e.peeled = strings.TrimPrefix(ln, "^")
			cur[last] = e
		case len(ln) > 41 && ln[40] == ' ' && IsID(ln[:40]):
			last = ln[41:]
			cur[last] = entry{id: ln[:40]}
		default:
			last = ""
		}
	}
	for name := range cur {
		if strings.HasPrefix(name, "refs/remotes/origin/") {
			delete(cur, name)
		}
	}
	var config strings.Builder
	for _, r := range refs {
		if !IsID(r.ID) || strings.ContainsAny(r.Name, " \n\x00") {
			continue
		}
		switch {
		case strings.HasPrefix(r.Name, "refs/heads/"):
			cur["refs/remotes/origin/"+strings.TrimPrefix(r.Name, "refs/heads/")] = entry{id: r.ID}
			if fresh && r.Name == head {
				if _, ok := cur[r.Name]; !ok {
					cur[r.Name] = entry{id: r.ID}
					fmt.Fprintf(&config, "[branch %s]\n\tremote = origin\n\tmerge = %s\n", Quote(strings.TrimPrefix(head, "refs/heads/")), r.Name)
				}
			}
		case strings.HasPrefix(r.Name, "refs/tags/"):
			if _, ok := cur[r.Name]; !ok {
				cur[r.Name] = entry{id: r.ID, peeled: r.Peeled}
			}
		}
	}
	names := make([]string, 0, len(cur))
	for n := range cur {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("# pack-refs with: peeled fully-peeled sorted \n")
	for _, n := range names {
		e := cur[n]
		fmt.Fprintf(&b, "%s %s\n", e.id, n)
		if IsID(e.peeled) {
			fmt.Fprintf(&b, "^%s\n", e.peeled)
		}
	}
	return b.Bytes(), config.String()
}

// OriginHEAD is refs/remotes/origin/HEAD for the remote's HEAD branch
// head (refs/heads/NAME), or "" if it names none.
func OriginHEAD(head string) string {
	name, ok := strings.CutPrefix(head, "refs/heads/")
	if !ok || name == "" || strings.ContainsAny(name, " \n\x00") {
		return ""
	}
	return "ref: refs/remotes/origin/" + name + "\n"
}

// HeadLogEntry is the line `git checkout` appends to logs/HEAD when HEAD
// moves from oldID (the branch from, or oldID itself when detached) to
// commit: git status reads the last one to say "HEAD detached at".
// oldID may be "" (a new git dir).
func HeadLogEntry(oldID, from, commit string, when time.Time) string {
	if oldID == "" {
		oldID = strings.Repeat("0", 40)
	}
	if from == "" {
		from = oldID
	}
	return fmt.Sprintf("%s %s gitfs <gitfs@localhost> %d +0000\tcheckout: moving from %s to %s\n",
		oldID, commit, when.Unix(), from, commit)
}
