//go:build linux

package main

import (
	"strings"
	"testing"
)

// TestFSMonitorAnswer: a linked worktree inside a workspace gets the
// paths below it, relative to it; a change to it or above it makes git
// look at everything: "/" as the only path (git reads it only first).
func TestFSMonitorAnswer(t *testing.T) {
	paths := []string{"a.txt", ".wt/feat/x.txt", ".wt/feat/d/", ".wt/other/y", ".wt/feat"}
	for _, c := range []struct {
		prefix string
		paths  []string
		full   bool
		want   string
	}{
		{"", paths, false, "T|a.txt|.wt/feat/x.txt|.wt/feat/d/|.wt/other/y|.wt/feat|"},
		{"", nil, true, "T|/|"},
		{"", []string{"a"}, true, "T|/|"},
		{".wt/feat", paths[:4], false, "T|x.txt|d/|"},
		{".wt/feat", paths, false, "T|/|"},
		{".wt/feat", []string{".wt/"}, false, "T|/|"},
		{".wt/feat", []string{".wt/feat/x", ".wt"}, false, "T|/|"},
		{".wt/feat", []string{".wt/feature/x", ".wt/fea"}, false, "T|"},
		{".wt/feat", []string{".wt/feat/x"}, true, "T|/|"},
	} {
		got := strings.ReplaceAll(fsmonitorAnswer("T", c.full, c.paths, c.prefix), "\x00", "|")
		if got != c.want {
			t.Errorf("prefix %q, paths %q, full %v: %q, want %q", c.prefix, c.paths, c.full, got, c.want)
		}
	}
}

func TestWorkspaceOfDir(t *testing.T) {
	for _, c := range []struct {
		wd, name, prefix string
		ok               bool
	}{
		{"/m/ws", "ws", "", true},
		{"/m/ws/.wt/feat", "ws", ".wt/feat", true},
		{"/m", "", "", false},
		{"/elsewhere/wt", "", "", false},
		{"/m2/ws", "", "", false},
		{"/m/..ws", "..ws", "", true},
	} {
		name, prefix, ok := workspaceOfDir("/m", c.wd)
		if name != c.name || prefix != c.prefix || ok != c.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", c.wd, name, prefix, ok, c.name, c.prefix, c.ok)
		}
	}
}
