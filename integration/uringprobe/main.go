//go:build linux

// Command uringprobe measures what FUSE over io_uring would change for
// the request-bound case of issue 13: 4 KiB writes, one FUSE WRITE per
// write(2). It serves one file system that drops what is written (so the
// numbers are the transport's alone) in two ways, go-fuse's /dev/fuse
// server as gitfs runs it and go-fuse's ProtocolServer behind io_uring
// queues (kernel 6.14 or later, FUSE_OVER_IO_URING), and times the same
// dd into each, and into a directory on disk, alternately.
//
//	sudo go run ./integration/uringprobe --runs 5
//
// It needs root (mount(2) and the fuse module's enable_uring parameter,
// which it sets for the run and puts back). Compare the ratios within one
// run: the machine's load moves them all.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

const enableURing = "/sys/module/fuse/parameters/enable_uring"

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
	if depth < 1 || depth > queueDepthLimit || runs < 1 || count < 1 {
		return errors.New("--runs, --count and --depth (1-64) must be positive")
	}
	old, err := os.ReadFile(enableURing)
	if err != nil {
		return fmt.Errorf("this kernel has no FUSE over io_uring: %w", err)
	}
	if err := os.WriteFile(enableURing, []byte("1"), 0); err != nil {
		return fmt.Errorf("enable FUSE over io_uring (needs root): %w", err)
	}
	defer func() {
		if err := os.WriteFile(enableURing, old, 0); err != nil {
			fmt.Fprintf(os.Stderr, "uringprobe: put %s back to %q: %v\n", enableURing, strings.TrimSpace(string(old)), err)
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
	var ringRequests atomic.Int64
	stopRing, err := mountURing(ringFS, ringMnt, depth, &ringRequests)
	if err != nil {
		return err
	}
	defer stopRing()
	sides := []struct {
		name, dir string
		times     []float64
	}{{"/dev/fuse (go-fuse Server)", devMnt, nil}, {"io_uring (go-fuse ProtocolServer)", ringMnt, nil}, {"native: " + native, nativeDir, nil}}
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
	if ringRequests.Load() < int64(count) {
		return fmt.Errorf("only %d requests came through the io_uring queues for %d writes a run: the kernel kept /dev/fuse", ringRequests.Load(), count)
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
	fmt.Printf("\nrequests through io_uring: %d (%d CPU queues of %d entries)\n", ringRequests.Load(), runtime.NumCPU(), depth)
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

// mountURing mounts fs at mnt with a /dev/fuse descriptor of its own,
// answers FUSE_INIT (offering FUSE_OVER_IO_URING) and whatever else comes
// that way, and then registers one io_uring queue per CPU, after which
// the kernel sends requests through the queues.
func mountURing(fs fuse.RawFileSystem, mnt string, depth int, requests *atomic.Int64) (func(), error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, err
	}
	opts := mountOptions()
	opts.ExtraCapabilities = fuse.CAP_OVER_IO_URING
	ps := fuse.NewProtocolServer(fs, opts)
	devFd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,max_read=1048576", devFd)
	if err := syscall.Mount("uringprobe", mnt, "fuse.uringprobe", syscall.MS_NOSUID|syscall.MS_NODEV, data); err != nil {
		syscall.Close(devFd)
		return nil, fmt.Errorf("mount %s: %w", mnt, err)
	}
	queuesUp := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		in, out := make([]byte, payloadSize+4096), make([]byte, payloadSize+4096)
		started := false
		for {
			n, err := syscall.Read(devFd, in)
			if err == syscall.EINTR || err == syscall.ENOENT {
				continue
			}
			if err != nil {
				if !started {
					queuesUp <- fmt.Errorf("read /dev/fuse: %w", err)
				}
				return // ENODEV: unmounted
			}
			m, _ := ps.HandleRequest([][]byte{in[:n]}, [][]byte{out})
			if m > 0 {
				syscall.Write(devFd, out[:m]) // ENOENT: the request was interrupted
			}
			if binary.LittleEndian.Uint32(in[4:]) == opcodeInit && !started {
				started = true
				var err error
				for q := 0; q < runtime.NumCPU() && err == nil; q++ {
					ready := make(chan error)
					go serveQueue(ps, devFd, q, depth, requests, ready)
					err = <-ready
				}
				queuesUp <- err
			}
		}
	}()
	stop := func() {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		<-finished
		syscall.Close(devFd)
	}
	select {
	case err := <-queuesUp:
		if err != nil {
			stop()
			return nil, err
		}
	case <-time.After(10 * time.Second):
		stop()
		return nil, errors.New("no FUSE_INIT from the kernel in 10 s")
	}
	return stop, nil
}
