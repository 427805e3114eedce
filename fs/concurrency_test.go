//go:build linux

package fs_test

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/gittest"
)

func TestConcurrentWorkspaces(t *testing.T) {
	e := newEnv(t, append(sampleFiles(), gittest.Generate(200, 2)...))
	want := gittest.Archive(t, e.repo.Dir, e.commit)
	d := 5 * time.Second
	if s := os.Getenv("GITFS_STRESS_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		d = time.Duration(n) * time.Second
	}
	var wss []string
	for i := 0; i < 4; i++ {
		wss = append(wss, e.create(fmt.Sprintf("w%d", i)))
	}
	var paths []string
	for p, n := range want {
		if n.Kind == "file" {
			paths = append(paths, p)
		}
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	final := make([]map[string]string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			ws := wss[g%4]
			rng := rand.New(rand.NewSource(int64(g)))
			mine := map[string]string{}
			final[g] = mine
			for i := 0; time.Now().Before(deadline); i++ {
				// read an unchanged lower file and check it
				p := paths[rng.Intn(len(paths))]
				if strings.HasPrefix(p, "README") || strings.HasPrefix(p, "src/") {
					continue
				}
				b, err := os.ReadFile(filepath.Join(ws, p))
				if err != nil {
					errs <- err
					return
				}
				if gittest.Node(want[p]).Kind == "file" && len(b) == 0 && p != "empty" {
					errs <- fmt.Errorf("%s empty", p)
					return
				}
				// write, rewrite, rename my own files; copy up a lower one
				name := fmt.Sprintf("g%d-%d", g, i%5)
				content := fmt.Sprintf("%d %d %s", g, i, strings.Repeat("x", rng.Intn(5000)))
				tmp := filepath.Join(ws, name+".tmp")
				if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
					errs <- err
					return
				}
				if err := os.Rename(tmp, filepath.Join(ws, name)); err != nil {
					errs <- err
					return
				}
				mine[name] = content
				mod := fmt.Sprintf("src/deep/g%d", g)
				if err := os.WriteFile(filepath.Join(ws, mod), []byte(content), 0o644); err != nil {
					errs <- err
					return
				}
				mine[mod] = content
				if _, err := os.ReadDir(filepath.Join(ws, "src")); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for g, mine := range final {
		for p, c := range mine {
			if got := readFile(t, filepath.Join(wss[g%4], p)); got != c {
				t.Errorf("workspace %d %s: got %d bytes, want %d", g%4, p, len(got), len(c))
			}
		}
		// the other workspaces never see it
		for w := range wss {
			if w == g%4 {
				continue
			}
			if _, err := os.Stat(filepath.Join(wss[w], fmt.Sprintf("g%d-0", g))); !os.IsNotExist(err) {
				t.Errorf("workspace %d sees workspace %d's file: %v", w, g%4, err)
			}
		}
	}
}

// TestLocks: locks between processes on this host (kernel-local).
func TestLocks(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("no flock(1)")
	}
	e := newEnv(t, sampleFiles())
	ws := e.create("l")
	for _, p := range []string{"README.md", "newfile"} {
		f, err := os.OpenFile(filepath.Join(ws, p), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		if err := exec.Command("flock", "-n", filepath.Join(ws, p), "true").Run(); err == nil {
			t.Errorf("%s: a second process got the lock", p)
		}
		f.Close()
		if err := exec.Command("flock", "-n", filepath.Join(ws, p), "true").Run(); err != nil {
			t.Errorf("%s: lock not released: %v", p, err)
		}
	}
}
