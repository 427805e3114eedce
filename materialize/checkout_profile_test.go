package materialize

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// TestCheckoutProfile checks out REPO at REV from an existing gitfs root,
// in-process, so that `go test -cpuprofile` sees the materializer. It is a
// profiling aid, skipped unless GITFS_MAT_PROFILE=ROOT:REPO:REV is set:
//
//	GITFS_MAT_PROFILE=/tmp/root:demo:main go test ./materialize -run TestCheckoutProfile -cpuprofile cpu.out
func TestCheckoutProfile(t *testing.T) {
	spec := os.Getenv("GITFS_MAT_PROFILE")
	if spec == "" {
		t.Skip("set GITFS_MAT_PROFILE=ROOT:REPO:REV")
	}
	parts := filepath.SplitList(spec)
	if len(parts) != 3 {
		t.Fatalf("GITFS_MAT_PROFILE=%q: want ROOT:REPO:REV", spec)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ms, err := mirror.Open(parts[0], log)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ms.Get(ctx, parts[1])
	if err != nil {
		t.Fatal(err)
	}
	commit, err := m.Resolve(ctx, parts[2])
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewStore(parts[0], ms, log, snapshot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap, release, err := st.Get(ctx, parts[1], commit)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if os.Getenv("GITFS_MAT_PROFILE_READ") != "" {
		// Only read every blob, as the writers would, to time the reading.
		start := time.Now()
		p, err := makePlan(ctx, snap, 10, false, defaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		planned := time.Since(start)
		var total atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				buf := make([]byte, 256<<10)
				for i := w * len(p.files) / 2; i < (w+1)*len(p.files)/2; i++ {
					rc, _, err := snap.Stream(p.files[i].id)
					if err != nil {
						t.Error(err)
						return
					}
					n, _ := io.CopyBuffer(io.Discard, rc, buf)
					rc.Close()
					total.Add(n)
				}
			}(w)
		}
		wg.Wait()
		t.Logf("plan %v; read %d files, %d bytes in %v", planned, len(p.files), total.Load(), time.Since(start))
		return
	}
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	stats, err := Checkout(ctx, snap, out, Options{Workers: 2, Git: os.Getenv("GITFS_MAT_PROFILE_GIT") != ""})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d files, %d bytes in %v", stats.Files, stats.Bytes, time.Since(start))
}
