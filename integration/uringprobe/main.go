//go:build linux

// Command uringprobe measures what FUSE over io_uring changes for the
// request-bound case of issue 13: 4 KiB writes, one FUSE WRITE per
// write(2). It serves one file system that drops what is written (so the
// numbers are the transport's alone) in two ways, go-fuse's /dev/fuse
// server as `gitfs serve` runs it and internal/fuseuring as `gitfs serve
// --io-uring` does (kernel 6.14 or later, FUSE_OVER_IO_URING), and times
// the same dd into each, and into a directory on disk, alternately.
//
//	sudo go run ./integration/uringprobe --runs 5
//
// It needs root (mount(2) and the fuse module's enable_uring parameter,
// which it sets for the run and puts back). Compare the ratios within one
// run: the machine's load moves them all.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/gitfs/gitfs/internal/fuseuring"
)

func main() {
	runs := flag.Int("runs", 5, "runs of each side")
	count := flag.Int("count", 25600, "4 KiB writes a run")
	native := flag.String("native-dir", os.TempDir(), "directory on disk for the native side")
	depth := flag.Int("depth", 2, "io_uring entries per CPU queue")
	flag.Parse()
	if err := run(*runs, *count, *native, *depth); err != nil {
		fmt.Fprintln(os.Stderr, "uringprobe:", err)
		os.Exit(1)
	}
}

func run(runs, count int, native string, depth int) error {
	if depth < 1 || depth > 64 || runs < 1 || count < 1 {
		return errors.New("--runs, --count and --depth (1-64) must be positive")
	}
	restore, err := fuseuring.SetEnabled(true)
	if err != nil {
		return fmt.Errorf("enable FUSE over io_uring (needs root and Linux >= 6.14): %w", err)
	}
	defer func() {
		if err := restore(); err != nil {
			fmt.Fprintln(os.Stderr, "uringprobe:", err)
		}
	}()
	dir, err := os.MkdirTemp("", "uringprobe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	devMnt, ringMnt := filepath.Join(dir, "devfuse"), filepath.Join(dir, "uring")
	nativeDir, err := os.MkdirTemp(native, "uringprobe-native-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(nativeDir)
	devFS, ringFS := newNullFS(), newNullFS()
	stopDev, err := mountDevFuse(devFS, devMnt)
	if err != nil {
		return err
	}
	defer stopDev()
	stopRing, ringRequests, err := mountURing(ringFS, ringMnt, depth)
	if err != nil {
		return err
	}
	defer stopRing()
	sides := []struct {
		name, dir string
		times     []float64
	}{{"/dev/fuse (go-fuse Server)", devMnt, nil}, {"io_uring (internal/fuseuring)", ringMnt, nil}, {"native: " + native, nativeDir, nil}}
	for i := 0; i < runs; i++ {
		for j := range sides {
			s := &sides[(i+j)%len(sides)]
			t, err := timedWrites(s.dir, count)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			s.times = append(s.times, t)
		}
	}
	if ringRequests() < int64(count) {
		return fmt.Errorf("only %d requests came through the io_uring queues for %d writes a run: the kernel kept /dev/fuse", ringRequests(), count)
	}
	mib := float64(count) * 4096 / (1 << 20)
	devMedian := median(sides[0].times)
	fmt.Printf("%d KiB writes of 4 KiB to a new file, %d runs, medians; a file system that drops the bytes\n\n", count*4, runs)
	fmt.Println("| transport | median | MiB/s | time vs /dev/fuse | min–max |")
	fmt.Println("|---|---|---|---|---|")
	for _, s := range sides {
		m := median(s.times)
		fmt.Printf("| %s | %.3f s | %.0f | %.2f | %.3f–%.3f |\n", s.name, m, mib/m, m/devMedian, slices.Min(s.times), slices.Max(s.times))
	}
	fmt.Printf("\nrequests through io_uring: %d (%d CPU queues of %d entries)\n", ringRequests(), runtime.NumCPU(), depth)
	return nil
}

func timedWrites(dir string, count int) (float64, error) {
	path := filepath.Join(dir, "written")
	os.Remove(path)
	start := time.Now()
	out, err := exec.Command("dd", "if=/dev/zero", "of="+path, "bs=4k", fmt.Sprintf("count=%d", count)).CombinedOutput()
	t := time.Since(start).Seconds()
	if err != nil {
		return 0, fmt.Errorf("dd: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return t, os.Remove(path)
}

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

func mountOptions() *fuse.MountOptions {
	return &fuse.MountOptions{MaxWrite: 1 << 20, Name: "uringprobe", DirectMount: true}
}

// mountDevFuse serves fs at mnt as gitfs does: go-fuse's Server reading
// /dev/fuse.
func mountDevFuse(fs fuse.RawFileSystem, mnt string) (func(), error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	srv, err := fuse.NewServer(fs, mnt, mountOptions())
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", mnt, err)
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		return nil, err
	}
	return func() { srv.Unmount() }, nil
}

// mountURing serves fs at mnt through gitfs's io_uring transport
// (internal/fuseuring), as `gitfs serve --io-uring` does.
// It returns how to stop it and a count of the requests served through
// the queues.
func mountURing(fs fuse.RawFileSystem, mnt string, depth int) (func(), func() int64, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, nil, err
	}
	srv := fuseuring.New(*mountOptions(), fuseuring.Options{Depth: depth})
	if err := srv.Mount(mnt, fs); err != nil {
		return nil, nil, err
	}
	if srv.Queues() == 0 {
		srv.Unmount()
		return nil, nil, errors.New("the kernel declined io_uring queues")
	}
	stop := func() {
		if err := srv.Unmount(); err != nil {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}
	return stop, func() int64 { ring, _ := srv.Requests(); return ring }, nil
}
