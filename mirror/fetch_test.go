package mirror

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
)

// uploadPackWrapper writes an upload-pack that counts its calls in
// countFile and sleeps delay first, and returns its path.
func uploadPackWrapper(t *testing.T, countFile string, delay time.Duration) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "upload-pack")
	script := fmt.Sprintf("#!/bin/sh\necho x >> '%s'\nsleep %.3f\nexec git upload-pack \"$@\"\n", countFile, delay.Seconds())
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func uploadCount(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "x")
}

// TestFetchCoalesces: concurrent fetches in one process run one
// git fetch; fetches through separate Sets (separate processes) wait for
// the running one and take its result.
func TestFetchCoalesces(t *testing.T) {
	tests := []struct {
		name      string
		sets      int // separate Sets, standing in for processes
		perSet    int
		maxFetch  int
		coalesced int // at least
	}{
		// One fetch is what happens; a second is tolerated for a caller
		// so slow to start (loaded CI) that the first had already finished.
		{"one process", 1, 8, 2, 6},
		{"four processes", 4, 2, 2, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			count := filepath.Join(t.TempDir(), "count")
			wrapper := uploadPackWrapper(t, count, 300*time.Millisecond)
			gittest.Git(t, f.dir(), "config", "remote.origin.uploadpack", wrapper)
			want := f.repo.Commit(t, "main", "second", gittest.Generate(25, 6))
			var wg sync.WaitGroup
			var mu sync.Mutex
			coalesced := 0
			start := make(chan struct{})
			for i := 0; i < tc.sets; i++ {
				s := f.newSet(t)
				for j := 0; j < tc.perSet; j++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						res, err := s.Fetch(context.Background(), "demo")
						if err != nil {
							t.Errorf("fetch: %v", err)
						}
						mu.Lock()
						if res.Coalesced {
							coalesced++
						}
						mu.Unlock()
					}()
				}
			}
			close(start)
			wg.Wait()
			n := uploadCount(t, count)
			if n < 1 || n > tc.maxFetch || coalesced < tc.coalesced {
				t.Fatalf("%d callers ran %d fetches (%d coalesced); want 1..%d fetches, >= %d coalesced",
					tc.sets*tc.perSet, n, coalesced, tc.maxFetch, tc.coalesced)
			}
			m, _ := f.set.Get(context.Background(), "demo")
			if got, _ := m.Resolve(context.Background(), "main"); got != want {
				t.Fatalf("main = %s after fetch, want %s", got, want)
			}
		})
	}
}

// TestFetch: what a fetch does to the mirror in each situation.
func TestFetch(t *testing.T) {
	tests := []struct {
		name string
		// change the remote and the mirror; return what main must be after
		// the fetch and whether it must fail
		setup   func(t *testing.T, f *fixture) (wantMain string, wantErr bool)
		after   func(t *testing.T, f *fixture)
		wantRef map[string]bool // refs that must (true) or must not exist
	}{
		{"force-push and branch deletion", func(t *testing.T, f *fixture) (string, bool) {
			gittest.Git(t, f.repo.Dir, "branch", "gone", "main")
			if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
				t.Fatal(err)
			}
			gittest.Git(t, f.repo.Dir, "branch", "-D", "gone")
			c := f.repo.Commit(t, "rewrite", "unrelated", gittest.Generate(5, 7))
			gittest.Git(t, f.repo.Dir, "update-ref", "refs/heads/main", c)
			gittest.Git(t, f.repo.Dir, "branch", "-D", "rewrite")
			return c, false
		}, nil, map[string]bool{"refs/heads/gone": false, "refs/heads/rewrite": false, "refs/tags/v1": true}},
		{"stale git locks of a killed fetch", func(t *testing.T, f *fixture) (string, bool) {
			c := f.repo.Commit(t, "main", "second", gittest.Generate(5, 8))
			for _, p := range []string{"packed-refs.lock", "refs/heads/main.lock", "objects/pack/tmp_pack_abc", "config.lock"} {
				must(t, os.WriteFile(filepath.Join(f.dir(), p), []byte("x"), 0o644))
			}
			packs, _ := filepath.Glob(filepath.Join(f.dir(), "objects", "pack", "pack-*.pack"))
			must(t, os.WriteFile(strings.TrimSuffix(packs[0], ".pack")+".keep", []byte("fetch-pack 12345 on host\n"), 0o644))
			return c, false
		}, func(t *testing.T, f *fixture) {
			for _, p := range []string{"packed-refs.lock", "refs/heads/main.lock", "objects/pack/tmp_pack_abc", "config.lock"} {
				if _, err := os.Stat(filepath.Join(f.dir(), p)); err == nil {
					t.Errorf("%s still there", p)
				}
			}
			if keeps, _ := filepath.Glob(filepath.Join(f.dir(), "objects", "pack", "*.keep")); len(keeps) > 0 {
				t.Errorf("transient .keep of a killed fetch still there: %v", keeps)
			}
		}, nil},
		{"remote gone: fails, mirror unchanged", func(t *testing.T, f *fixture) (string, bool) {
			f.repo.Commit(t, "main", "second", gittest.Generate(5, 9))
			must(t, os.Rename(f.repo.Dir, f.repo.Dir+".gone"))
			return f.commit, true
		}, func(t *testing.T, f *fixture) {
			if st := readState(f.dir()); st.Error == "" {
				t.Error("failed fetch not recorded in the state")
			}
			must(t, os.Rename(f.repo.Dir+".gone", f.repo.Dir))
			if _, err := f.set.Fetch(context.Background(), "demo"); err != nil {
				t.Fatalf("fetch after the remote is back: %v", err)
			}
			if st := readState(f.dir()); st.Error != "" {
				t.Errorf("error not cleared: %s", st.Error)
			}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ctx := context.Background()
			wantMain, wantErr := tc.setup(t, f)
			before := readState(f.dir())
			_, err := f.set.Fetch(ctx, "demo")
			if (err != nil) != wantErr {
				t.Fatalf("fetch: %v, want error=%v", err, wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "fetch demo: ") {
				t.Errorf("error %q does not say what failed", err)
			}
			if st := readState(f.dir()); st.Gen != before.Gen+1 {
				t.Errorf("gen %d -> %d, want one more", before.Gen, st.Gen)
			}
			m, err := f.set.Get(ctx, "demo")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := m.Resolve(ctx, "main"); got != wantMain {
				t.Fatalf("main = %s, %v; want %s", got, err, wantMain)
			}
			for ref, want := range tc.wantRef {
				_, err := m.Resolve(ctx, ref)
				if (err == nil) != want {
					t.Errorf("%s exists=%v, want %v", ref, err == nil, want)
				}
			}
			if tc.after != nil {
				tc.after(t, f)
			}
		})
	}
}

// TestFetchErrorNotHiddenByStateWrite: when git's fetch fails and so does
// recording its result (a full disk: both fail together), the error names
// the fetch's failure, not only the state file's. It used to say only
// "write fetch state: ...", hiding why the fetch failed.
func TestFetchErrorNotHiddenByStateWrite(t *testing.T) {
	f := newFixture(t)
	must(t, os.RemoveAll(f.repo.Dir)) // the remote is gone: git fetch fails
	tmp := filepath.Join(f.dir(), stateFile+".tmp")
	must(t, os.MkdirAll(filepath.Join(tmp, "x"), 0o755)) // and the state cannot be written
	_, err := f.set.Fetch(context.Background(), "demo")
	if err == nil || !strings.Contains(err.Error(), "fetch demo:") || !strings.Contains(err.Error(), "write fetch state") || strings.Contains(err.Error(), "\n") {
		t.Errorf("fetch: %v, want the fetch's failure and the state's, on one line", err)
	}
}
