//go:build linux

package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/gitfs/gitfs/internal/gittest"
	"github.com/gitfs/gitfs/snapshot"
	"github.com/gitfs/gitfs/workspace"
)

// Measurements, not pass/fail: run with GITFS_FS_BENCH=1 go test -run Measure -v ./fs/

func benchGate(t *testing.T) {
	if os.Getenv("GITFS_FS_BENCH") == "" {
		t.Skip("measurement: set GITFS_FS_BENCH=1")
	}
}

func dropPageCache() {
	exec.Command("sync").Run()
	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200)
}

func shTime(t *testing.T, script string) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", script, err, out)
	}
	return time.Since(start), strings.TrimSpace(string(out))
}

// TestMeasurePassthrough compares upper-file I/O with and without FUSE
// passthrough.
func TestMeasurePassthrough(t *testing.T) {
	benchGate(t)
	const size = 512 << 20
	chunk := bytes.Repeat([]byte("p"), 1<<20)
	modes := []string{"0", "1", "0", "1"}
	for i, pt := range modes {
		t.Run(fmt.Sprintf("%d-passthrough=%s", i, pt), func(t *testing.T) {
			t.Setenv("GITFS_PASSTHROUGH", pt)
			e := newEnv(t, sampleFiles())
			ws := e.create("pt")
			p := filepath.Join(ws, "big")
			exec.Command("sync").Run()
			start := time.Now()
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			for n := 0; n < size; n += len(chunk) {
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			write := time.Since(start)
			first, _ := shTime(t, "cat "+p+" > /dev/null")
			warm, _ := shTime(t, "cat "+p+" > /dev/null")
			dropPageCache()
			cold, _ := shTime(t, "cat "+p+" > /dev/null")
			s0 := e.fs.Stats()
			rw, _ := shTime(t, "dd if=/dev/zero of="+p+" bs=4k count=20000 conv=notrunc 2>/dev/null")
			t.Logf("4 KiB writes: getxattr requests %d", e.fs.Stats().Getxattrs-s0.Getxattrs)
			small, _ := shTime(t, "cd "+ws+" && mkdir s && for i in $(seq 1 500); do echo hello > s/f$i; done && cat s/* > /dev/null")
			mb := float64(size) / (1 << 20)
			t.Logf("passthrough=%s: write %d MiB in 1 MiB writes %.0f MiB/s; 4 KiB writes %.0f MiB/s; read after write %.0f MiB/s, warm %.0f MiB/s, cold %.0f MiB/s; 500 small files create+read %v",
				pt, size>>20, mb/write.Seconds(), 80000.0/1024/rw.Seconds(), mb/first.Seconds(), mb/warm.Seconds(), mb/cold.Seconds(), small.Round(time.Millisecond))
		})
	}
}

// TestMeasureCreateAndTar: ws create time by tree size, and tar over a
// workspace (cold and warm) next to a native checkout.
func TestMeasureCreateAndTar(t *testing.T) {
	benchGate(t)
	for _, n := range []int{1000, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnv(t, gittest.Generate(n, 7))
			// Build the snapshot first: create's own cost is what is measured.
			_, rel, err := e.store.Get(context.Background(), "demo", e.commit)
			if err != nil {
				t.Fatal(err)
			}
			rel()
			var times []time.Duration
			for i := 0; i < 5; i++ {
				start := time.Now()
				if _, err := e.fs.Create(context.Background(), fmt.Sprintf("c%d", i), workspace.Spec{Repo: "demo", Commit: e.commit}); err != nil {
					t.Fatal(err)
				}
				times = append(times, time.Since(start))
			}
			native := t.TempDir()
			clone, _ := shTime(t, fmt.Sprintf("git clone -q --shared --no-checkout %s %s/n && cd %s/n && git checkout -q %s", e.repo.Dir, native, native, e.commit))
			nTarCold, _ := shTime(t, "sync; echo 3 > /proc/sys/vm/drop_caches; cd "+native+"/n && tar --exclude=.git -cf - . | wc -c")
			nTarWarm, nBytes := shTime(t, "cd "+native+"/n && tar --exclude=.git -cf - . | wc -c")
			// Cold: a fresh daemon (empty caches) and an empty page cache.
			st2, err := snapshot.NewStore(e.root, e.ms, e.log, snapshot.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e.store = st2
			e.mount()
			ws := filepath.Join(e.mnt, "c0")
			dropPageCache()
			if pf := os.Getenv("GITFS_FS_PROFILE"); pf != "" {
				out, err := os.Create(pf)
				if err != nil {
					t.Fatal(err)
				}
				pprof.StartCPUProfile(out)
			}
			wTarCold, _ := shTime(t, "cd "+ws+" && tar -cf - . | wc -c")
			if os.Getenv("GITFS_FS_PROFILE") != "" {
				pprof.StopCPUProfile()
			}
			s1 := e.fs.Stats()
			wTarWarm, wBytes := shTime(t, "cd "+ws+" && tar -cf - . | wc -c")
			s2 := e.fs.Stats()
			t.Logf("daemon requests: cold tar %+v; warm tar lookups %d opens %d reads %d (%d bytes) inflations %d", s1,
				s2.Lookups-s1.Lookups, s2.Opens-s1.Opens, s2.LowerReads-s1.LowerReads, s2.LowerReadBytes-s1.LowerReadBytes, s2.Inflations-s1.Inflations)
			findW, _ := shTime(t, "cd "+ws+" && find . -type f | wc -l")
			t.Logf("%d files: ws create median %v (all %v); git clone --shared + checkout %v", n, median(times), times, clone.Round(time.Millisecond))
			t.Logf("%d files: tar|wc workspace cold %v warm %v (%s bytes); native cold %v warm %v (%s bytes); find over workspace (warm) %v",
				n, wTarCold.Round(time.Millisecond), wTarWarm.Round(time.Millisecond), wBytes, nTarCold.Round(time.Millisecond), nTarWarm.Round(time.Millisecond), nBytes, findW.Round(time.Millisecond))
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

// TestMeasureInodeMemory: the daemon's heap per inode the kernel knows
// (a node, go-fuse's Inode and tables, the parent's children map), after
// a walk that looks every entry of a 20k-file workspace up, then after a
// read of every file.
func TestMeasureInodeMemory(t *testing.T) {
	benchGate(t)
	if os.Getenv("GITFS_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, for a profile by site
	}
	e := newEnv(t, gittest.Generate(20000, 7))
	ws := e.create("mem")
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	_, out := shTime(t, "find "+ws+" -path "+ws+"/.git -prune -o -print | wc -l")
	var n uint64
	fmt.Sscan(strings.TrimSpace(out), &n)
	listed := heap()
	if p := os.Getenv("GITFS_HEAP_PROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	shTime(t, "tar -C "+ws+" --exclude=./.git -cf - . | wc -c")
	time.Sleep(2 * time.Second) // the pusher
	read := heap()
	t.Logf("%d inodes: heap %d B an inode after the walk, %d after reading every file",
		n, (int64(listed)-int64(before))/int64(n), (int64(read)-int64(before))/int64(n))
}
