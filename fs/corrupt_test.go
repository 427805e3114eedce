//go:build linux

package fs_test

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/gitfs/gitfs/internal/gittest"
)

// TestCorruptObject: a corrupt blob gives EIO for that file only.
func TestCorruptObject(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	bad := make([]byte, 200<<10)
	rng.Read(bad)
	e := newEnv(t, append(sampleFiles(), gittest.File{Path: "bad.bin", Content: bad}))
	id := gittest.Git(t, e.repo.Dir, "rev-parse", "main:bad.bin")
	ws := e.create("c")
	idxs, _ := filepath.Glob(filepath.Join(e.root, "snapshots", e.commit, "objects/pack/*.idx"))
	corrupted := false
	for _, idx := range idxs {
		in, err := os.Open(idx)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("git", "show-index")
		cmd.Stdin = in
		out, err := cmd.Output()
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[1] == id {
				off, _ := strconv.ParseInt(f[0], 10, 64)
				pack := strings.TrimSuffix(idx, ".idx") + ".pack"
				pf, err := os.OpenFile(pack, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				pf.WriteAt(bytes.Repeat([]byte{0xff}, 64), off+40)
				pf.Close()
				corrupted = true
			}
		}
	}
	if !corrupted {
		t.Fatal("blob not found in the snapshot's packs")
	}
	_, err := os.ReadFile(filepath.Join(ws, "bad.bin"))
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("corrupt blob: %v, want EIO", err)
	}
	if got := readFile(t, filepath.Join(ws, "src/a.go")); got != "package a\n" {
		t.Errorf("other file after EIO: %q", got)
	}
	if _, err := os.ReadDir(ws); err != nil {
		t.Errorf("readdir after EIO: %v", err)
	}
}
