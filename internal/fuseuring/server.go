//go:build linux

package fuseuring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// EnableParam is the fuse module's switch for the io_uring transport.
const EnableParam = "/sys/module/fuse/parameters/enable_uring"

// Enabled reports whether the kernel offers FUSE over io_uring to new
// connections, or why not.
func Enabled() error {
	b, err := os.ReadFile(EnableParam)
	if err != nil {
		return fmt.Errorf("this kernel has no FUSE over io_uring (%s): %w", EnableParam, err)
	}
	if v := strings.TrimSpace(string(b)); v != "Y" && v != "1" {
		return fmt.Errorf("FUSE over io_uring is off: %s is %s (set it to 1 as root)", EnableParam, v)
	}
	return nil
}

const (
	opcodeInit      = 26
	opcodeWrite     = 16
	capOverIOURing  = uint64(1) << 41 // FUSE_OVER_IO_URING
	defaultDepth    = 16
	maxDepth        = 64
	minDevReadBytes = 8192 // the kernel's FUSE_MIN_READ_BUFFER
)

// Options are a Server's own settings; the mount's are go-fuse's
// MountOptions.
type Options struct {
	// Depth is the number of requests one CPU's queue holds in the daemon
	// at once (default 16, at most 64). The kernel keeps the rest until
	// an entry is answered, so a handler that blocks takes one of them,
	// and Depth blocked handlers stall every request made on that CPU.
	Depth int
}

// Server serves one mount. It implements go-fuse's fs.ServerCallbacks.
type Server struct {
	mnt    string
	opts   fuse.MountOptions
	depth  int
	devFd  int
	ps     *fuse.ProtocolServer
	bufLen int
	bufs   sync.Pool

	queues   int            // set once, before Mount returns
	entries  sync.WaitGroup // one per entry's thread
	ringReqs atomic.Int64
	devReqs  atomic.Int64
	done     chan struct{} // closed when every loop has ended
}

// New returns a Server for a mount made with opts; its notification
// methods work once Mount has returned.
func New(opts fuse.MountOptions, o Options) *Server {
	if opts.MaxWrite <= 0 {
		opts.MaxWrite = 128 << 10
	}
	opts.ExtraCapabilities |= fuse.CAP_OVER_IO_URING
	depth := o.Depth
	if depth <= 0 {
		depth = defaultDepth
	}
	depth = min(depth, maxDepth)
	// A request is its headers and up to max_pages of data.
	pages := (opts.MaxWrite-1)/os.Getpagesize() + 1
	s := &Server{opts: opts, depth: depth, devFd: -1, done: make(chan struct{})}
	s.bufLen = max(pages*os.Getpagesize()+os.Getpagesize(), minDevReadBytes)
	s.bufs.New = func() any { b := make([]byte, s.bufLen); return &b }
	return s
}

// Mount mounts fs at dir and serves it until it is unmounted. It needs
// root (mount(2)). If the kernel does not take io_uring queues (the
// module's enable_uring is off), every request comes through /dev/fuse:
// Queues then reports 0.
func (s *Server) Mount(dir string, fs fuse.RawFileSystem) error {
	if s.devFd >= 0 {
		return errors.New("fuseuring: already mounted")
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("mount point %s: %w", dir, err)
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/fuse: %w", err)
	}
	data := []string{
		"fd=" + strconv.Itoa(fd),
		fmt.Sprintf("rootmode=%o", st.Mode&unix.S_IFMT),
		"user_id=" + strconv.Itoa(os.Geteuid()),
		"group_id=" + strconv.Itoa(os.Getegid()),
		"max_read=" + strconv.Itoa(s.opts.MaxWrite),
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	for _, o := range s.opts.Options {
		switch o {
		case "nodev", "nosuid":
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "dev", "suid", "exec":
			return fmt.Errorf("fuseuring: mount option %q is not offered", o)
		default:
			data = append(data, o)
		}
	}
	if s.opts.AllowOther {
		data = append(data, "allow_other")
	}
	source := s.opts.FsName
	if source == "" {
		source = s.opts.Name
	}
	if err := unix.Mount(source, dir, "fuse."+s.opts.Name, flags, strings.Join(data, ",")); err != nil {
		unix.Close(fd)
		return fmt.Errorf("mount %s: %w", dir, err)
	}
	s.mnt, s.devFd = dir, fd
	s.ps = fuse.NewProtocolServer(fs, &s.opts)
	if err := s.init(); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		unix.Close(fd)
		s.devFd = -1
		return err
	}
	go s.readLoop()
	return nil
}

// init answers FUSE_INIT and, if the kernel agreed to io_uring, registers
// the queues.
func (s *Server) init() error {
	in, out := s.getBuf(), s.getBuf()
	defer s.putBuf(in)
	defer s.putBuf(out)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := unix.Read(s.devFd, *in)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read FUSE_INIT: %w", err)
		}
		if n < inHeaderSize || binary.LittleEndian.Uint32((*in)[4:]) != opcodeInit {
			if time.Now().After(deadline) {
				return errors.New("no FUSE_INIT from the kernel")
			}
			continue
		}
		m, _ := s.ps.HandleRequest([][]byte{(*in)[:n]}, [][]byte{*out})
		if m < outHeaderSize {
			return errors.New("FUSE_INIT: no answer")
		}
		if _, err := unix.Write(s.devFd, (*out)[:m]); err != nil {
			return fmt.Errorf("answer FUSE_INIT: %w", err)
		}
		if errno := int32(binary.LittleEndian.Uint32((*out)[4:])); errno != 0 {
			return fmt.Errorf("FUSE_INIT: %w", syscall.Errno(-errno))
		}
		initOut := (*fuse.InitOut)(unsafe.Pointer(&(*out)[outHeaderSize]))
		if initOut.Flags64()&capOverIOURing == 0 {
			return nil // the kernel does not offer it: /dev/fuse alone
		}
		break
	}
	for qid := 0; qid < possibleCPUs(); qid++ {
		for i := 0; i < s.depth; i++ {
			ready := make(chan error)
			s.entries.Add(1)
			go func() {
				defer s.entries.Done()
				s.serveEntry(qid, ready)
			}()
			if err := <-ready; err != nil {
				// The kernel takes the ring only once every queue has an
				// entry: those made serve nothing, and end with the
				// connection, which the caller unmounts.
				return fmt.Errorf("io_uring queue %d: %w", qid, err)
			}
		}
	}
	s.queues = possibleCPUs()
	return nil
}

// readLoop answers what comes through /dev/fuse, each request on a
// goroutine of its own, until the connection ends; then it waits for
// the entries' threads, whose commands end with it.
func (s *Server) readLoop() {
	var handlers sync.WaitGroup
	for {
		in := s.getBuf()
		n, err := unix.Read(s.devFd, *in)
		if err == unix.EINTR || err == unix.ENOENT || err == unix.EAGAIN {
			s.putBuf(in) // ENOENT: a request interrupted before it was read
			continue
		}
		if err != nil { // ENODEV: unmounted
			s.putBuf(in)
			break
		}
		s.devReqs.Add(1)
		handlers.Add(1)
		go func() {
			defer handlers.Done()
			defer s.putBuf(in)
			out := s.getBuf()
			defer s.putBuf(out)
			m, st := s.ps.HandleRequest([][]byte{(*in)[:n]}, [][]byte{*out})
			if m == 0 && st != fuse.OK && n >= inHeaderSize {
				m = errorReply(*out, (*in)[:n], st) // a request it could not parse
			}
			if m > 0 {
				unix.Write(s.devFd, (*out)[:m]) // ENOENT: interrupted meanwhile
			}
		}()
	}
	s.entries.Wait() // their commands end with the connection
	handlers.Wait()
	unix.Close(s.devFd)
	close(s.done)
}

// errorReply writes into out an answer with status st to request in, and
// returns its length.
func errorReply(out, in []byte, st fuse.Status) int {
	le := binary.LittleEndian
	le.PutUint32(out[0:], outHeaderSize)
	le.PutUint32(out[4:], uint32(-int32(st)))
	le.PutUint64(out[8:], le.Uint64(in[8:])) // the request's unique
	return outHeaderSize
}

func (s *Server) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *Server) putBuf(b *[]byte) { s.bufs.Put(b) }

// Queues is the number of io_uring queues the kernel takes requests
// through (one per possible CPU), 0 if /dev/fuse alone serves.
func (s *Server) Queues() int { return s.queues }

// Requests counts the requests answered through the queues and through
// /dev/fuse (INIT, FORGETs, INTERRUPTs and what came before the queues).
func (s *Server) Requests() (ring, dev int64) { return s.ringReqs.Load(), s.devReqs.Load() }

// Unmount unmounts the file system and waits until every request in
// progress was answered. A busy mount stays (EBUSY): the caller may
// detach it (MNT_DETACH), after which Wait returns once the last file
// in it is closed.
func (s *Server) Unmount() error {
	if s.devFd < 0 {
		return errors.New("fuseuring: not mounted")
	}
	if err := unix.Unmount(s.mnt, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", s.mnt, err)
	}
	s.Wait()
	return nil
}

// Wait waits until the connection has ended and every loop stopped.
func (s *Server) Wait() { <-s.done }

// possibleCPUs is the number of queues the kernel wants: one per possible
// CPU (it routes by the caller's CPU and takes the ring only once every
// queue is registered).
func possibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		_, hi, found := strings.Cut(r, "-")
		if !found {
			hi = r
		}
		h, err := strconv.Atoi(hi)
		if err != nil {
			return runtime.NumCPU()
		}
		n = max(n, h+1)
	}
	return n
}

// SetEnabled sets the fuse module's enable_uring (root only) until
// restore is called, which puts back what it was. It holds a lock file
// meanwhile, so that other processes that change it through SetEnabled
// (tests of several packages, which go test runs at once; the probe)
// wait instead of changing it under each other. The setting matters to a
// connection only at its INIT, and only to one that asks for io_uring.
func SetEnabled(on bool) (restore func() error, err error) {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "gitfs-enable-uring.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("enable_uring lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		return nil, fmt.Errorf("enable_uring lock: %w", err)
	}
	old, err := os.ReadFile(EnableParam)
	if err == nil {
		v := "0"
		if on {
			v = "1"
		}
		err = os.WriteFile(EnableParam, []byte(v), 0)
	}
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("set %s: %w", EnableParam, err)
	}
	return func() error {
		defer lock.Close() // and with it the lock
		if err := os.WriteFile(EnableParam, old, 0); err != nil {
			return fmt.Errorf("put %s back to %q: %w", EnableParam, strings.TrimSpace(string(old)), err)
		}
		return nil
	}, nil
}
