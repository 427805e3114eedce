package mirror

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Which refs a mirror keeps. By default every ref (git clone --mirror:
// +refs/*:refs/*); `repo add --refs heads,tags` keeps only those kinds,
// for remotes whose other refs (GitHub's refs/pull/*, Gerrit's
// refs/changes/*) are many, huge or broken. The choice lives in the
// mirror's own git config (remote.origin.fetch), so every fetch and a
// repair's re-clone keep to it.

var refKind = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// ParseRefs parses --refs: "" or "all" for every ref (nil), else a comma
// list of ref kinds (heads, tags, notes, ...), each meaning refs/KIND/*.
func ParseRefs(s string) ([]string, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(k, "refs/"), "/"))
		if !refKind.MatchString(k) {
			return nil, fmt.Errorf("--refs %q: %q is not a ref kind: use all, or a list such as heads,tags", s, k)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

// FormatRefs is the inverse of ParseRefs.
func FormatRefs(kinds []string) string {
	if kinds == nil {
		return "every ref"
	}
	return "refs " + strings.Join(kinds, ",")
}

func refspec(kind string) string { return "+refs/" + kind + "/*:refs/" + kind + "/*" }

// RefKinds reads which ref kinds the mirror keeps (nil: every ref).
func (m *Mirror) RefKinds(ctx context.Context) ([]string, error) {
	out, err := (gitCmd{args: []string{"config", "--file", filepath.Join(m.Dir, "config"), "--get-all", "remote.origin.fetch"}}).run(ctx)
	if err != nil {
		return nil, err
	}
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		l = strings.TrimSpace(l)
		if l == "+refs/*:refs/*" || l == "" {
			return nil, nil
		}
		k, rest, ok := strings.Cut(strings.TrimPrefix(l, "+refs/"), "/*:refs/")
		if !ok || !strings.HasPrefix(l, "+refs/") || rest != k+"/*" || !refKind.MatchString(k) {
			return nil, nil // not a refspec gitfs writes: every ref, as git would fetch
		}
		kinds = append(kinds, k)
	}
	return kinds, nil
}

// cloneRefs makes tmp a bare mirror of url's refs of the given kinds: what
// clone --mirror does, with a narrower refspec (clone has no option for
// it). HEAD follows the remote's HEAD when it names a kept branch.
func (s *Set) cloneRefs(ctx context.Context, url, tmp string, kinds []string) error {
	if _, err := (gitCmd{args: []string{"init", "--bare", "--quiet", tmp}}).run(ctx); err != nil {
		return err
	}
	cfg := []string{"config", "--file", filepath.Join(tmp, "config")}
	if _, err := (gitCmd{args: append(cfg, "remote.origin.url", url)}).run(ctx); err != nil {
		return err
	}
	for _, k := range kinds {
		if _, err := (gitCmd{args: append(cfg, "--add", "remote.origin.fetch", refspec(k))}).run(ctx); err != nil {
			return err
		}
	}
	if _, err := (gitCmd{args: append(cfg, "remote.origin.mirror", "true")}).run(ctx); err != nil {
		return err
	}
	fetch := []string{"-c", "transfer.fsckObjects=true", "fetch", "--prune", s.quietOr(), "origin"}
	if _, err := (gitCmd{dir: tmp, args: fetch, progress: s.progress}).run(ctx); err != nil {
		return err
	}
	out, err := (gitCmd{dir: tmp, args: []string{"ls-remote", "--symref", "origin", "HEAD"}}).run(ctx)
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if ref, ok := strings.CutPrefix(l, "ref: "); ok {
				ref, _, _ = strings.Cut(ref, "\t")
				if _, err := (gitCmd{dir: tmp, args: []string{"rev-parse", "--verify", "--quiet", ref}}).run(ctx); err == nil {
					(gitCmd{dir: tmp, args: []string{"symbolic-ref", "HEAD", ref}}).run(ctx)
				}
			}
		}
	}
	return nil
}
