package mirror

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestGetUnknownCreatesNothing(t *testing.T) {
	f := newFixture(t)
	before := listTree(t, f.root)
	for _, name := range []string{"nope", "../x", "a/b", ""} {
		if _, err := f.set.Get(context.Background(), name); err == nil {
			t.Errorf("Get(%q) succeeded", name)
		} else if name == "nope" && !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(nope) = %v, want ErrNotFound", err)
		}
	}
	if after := listTree(t, f.root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("Get of unknown names changed the root:\nbefore %v\nafter  %v", before, after)
	}
}
