package mirror

import (
	"context"
	"fmt"
	"strings"
)

// Ref is one branch or tag of a mirror.
type Ref struct {
	Name   string // refs/heads/main, refs/tags/v1
	ID     string // the object it names
	Peeled string // for an annotated tag, the object it points to; else ""
}

// RefList lists the mirror's branches and tags and the branch its HEAD
// names ("" when HEAD is detached or dangling). It takes no lock: git
// reads refs atomically while a fetch updates them.
func (m *Mirror) RefList(ctx context.Context) ([]Ref, string, error) {
	out, err := (gitCmd{dir: m.Dir, args: []string{"for-each-ref", "--format=%(objectname) %(refname) %(*objectname)", "refs/heads/", "refs/tags/"}}).run(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s: list refs: %w", m.Name, err)
	}
	var refs []Ref
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !IsFullSHA(f[0]) {
			continue
		}
		r := Ref{Name: f[1], ID: f[0]}
		if len(f) > 2 && IsFullSHA(f[2]) {
			r.Peeled = f[2]
		}
		refs = append(refs, r)
	}
	head := ""
	if out, err := (gitCmd{dir: m.Dir, args: []string{"symbolic-ref", "-q", "HEAD"}}).run(ctx); err == nil {
		head = strings.TrimSpace(string(out))
	}
	return refs, head, nil
}
