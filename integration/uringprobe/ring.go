//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The kernel's ABI for FUSE over io_uring (linux/fuse.h, io_uring.h): an
// SQE of 128 bytes carries a URING_CMD whose last 80 bytes are a
// fuse_uring_cmd_req; each ring entry is a header buffer (the request's
// fuse_in_header, then its op's own struct at 128, then the entry's
// commit id and payload size at 256) and a payload buffer.
const (
	setupSQE128     = 1 << 10
	opURingCmd      = 46
	cmdRegister     = 1
	cmdCommitFetch  = 2
	enterGetEvents  = 1
	offSQEs         = 0x10000000
	headerSize      = 4096
	payloadSize     = 1<<20 + 4096
	opInOffset      = 128
	entInOutOffset  = 256
	inHeaderSize    = 40
	outHeaderSize   = 16
	opcodeInit      = 26
	sqeCmdOffset    = 48
	sqeSize         = 128
	cqeSize         = 16
	sizeOfParams    = 120
	maxOpInSize     = 128
	queueDepthLimit = 64
)

// uring is one io_uring instance, its rings mapped.
type uring struct {
	fd                            int
	ring, sqes                    []byte
	sqTail, sqMask, sqArray       uint32
	cqHead, cqTail, cqMask, cqOff uint32
	queued                        uint32
}

func word(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

func newURing(entries uint32) (*uring, error) {
	var p [sizeOfParams]byte
	le := binary.LittleEndian
	le.PutUint32(p[8:], setupSQE128)
	fd, _, e := syscall.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p[0])), 0)
	if e != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", e)
	}
	sqEntries, cqEntries := le.Uint32(p[0:]), le.Uint32(p[4:])
	r := &uring{fd: int(fd)}
	r.sqTail, r.sqMask, r.sqArray = le.Uint32(p[44:]), le.Uint32(p[48:]), le.Uint32(p[64:])
	r.cqHead, r.cqTail, r.cqMask, r.cqOff = le.Uint32(p[80:]), le.Uint32(p[84:]), le.Uint32(p[88:]), le.Uint32(p[100:])
	size := max(r.sqArray+sqEntries*4, r.cqOff+cqEntries*cqeSize)
	var err error
	prot, flags := unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE
	if r.ring, err = unix.Mmap(r.fd, 0, int(size), prot, flags); err != nil {
		return nil, fmt.Errorf("mmap io_uring rings: %w", err)
	}
	if r.sqes, err = unix.Mmap(r.fd, offSQEs, int(sqEntries*sqeSize), prot, flags); err != nil {
		return nil, fmt.Errorf("mmap io_uring SQEs: %w", err)
	}
	return r, nil
}

// queue adds one SQE, filled by fill, to be submitted by the next enter.
func (r *uring) queue(fill func(sqe []byte)) {
	tail := atomic.LoadUint32(word(r.ring, r.sqTail))
	idx := tail & *word(r.ring, r.sqMask)
	sqe := r.sqes[idx*sqeSize : (idx+1)*sqeSize]
	clear(sqe)
	fill(sqe)
	*word(r.ring, r.sqArray+idx*4) = idx
	atomic.StoreUint32(word(r.ring, r.sqTail), tail+1)
	r.queued++
}

// enter submits what is queued and waits for a completion.
func (r *uring) enter() error {
	for {
		_, _, e := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(r.queued), 1, enterGetEvents, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		r.queued = 0
		if e != 0 {
			return fmt.Errorf("io_uring_enter: %w", e)
		}
		return nil
	}
}

// reap calls f for each completion and consumes them.
func (r *uring) reap(f func(userData uint64, res int32)) {
	head := atomic.LoadUint32(word(r.ring, r.cqHead))
	tail := atomic.LoadUint32(word(r.ring, r.cqTail))
	mask := *word(r.ring, r.cqMask)
	for ; head != tail; head++ {
		c := r.ring[r.cqOff+(head&mask)*cqeSize:]
		f(binary.LittleEndian.Uint64(c), int32(binary.LittleEndian.Uint32(c[8:])))
	}
	atomic.StoreUint32(word(r.ring, r.cqHead), head)
}

// ringEntry is one request slot the kernel fills. Its buffers are mapped
// outside Go's heap: the kernel writes them while no Go code looks.
type ringEntry struct {
	header, payload, iov []byte
}

func fuseCmd(sqe []byte, devFd int, op uint32, userData uint64, qid uint16, commitID uint64, iov []byte) {
	le := binary.LittleEndian
	sqe[0] = opURingCmd
	le.PutUint32(sqe[4:], uint32(devFd))
	le.PutUint32(sqe[8:], op)
	if iov != nil {
		le.PutUint64(sqe[16:], uint64(uintptr(unsafe.Pointer(&iov[0]))))
		le.PutUint32(sqe[24:], 2)
	}
	le.PutUint64(sqe[32:], userData)
	le.PutUint64(sqe[sqeCmdOffset+8:], commitID)
	le.PutUint16(sqe[sqeCmdOffset+16:], qid)
}

func mapAnon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
}

// serveQueue registers depth entries for CPU qid's queue and answers
// what the kernel puts in them through ps until the connection ends.
// The kernel hands a request to the queue of the CPU its caller runs on,
// so each queue's thread is pinned to that CPU.
func serveQueue(ps *fuse.ProtocolServer, devFd, qid, depth int, requests *atomic.Int64, ready chan<- error) {
	runtime.LockOSThread()
	var cpus unix.CPUSet
	cpus.Set(qid)
	unix.SchedSetaffinity(0, &cpus) // only a hint: the kernel routes by the caller's CPU anyway
	r, err := newURing(uint32(depth * 2))
	if err != nil {
		ready <- err
		return
	}
	le := binary.LittleEndian
	entries := make([]*ringEntry, depth)
	for i := range entries {
		e := &ringEntry{}
		for _, b := range []struct {
			p *[]byte
			n int
		}{{&e.header, headerSize}, {&e.payload, payloadSize}, {&e.iov, 32}} {
			if *b.p, err = mapAnon(b.n); err != nil {
				ready <- fmt.Errorf("queue %d: %w", qid, err)
				return
			}
		}
		le.PutUint64(e.iov[0:], uint64(uintptr(unsafe.Pointer(&e.header[0]))))
		le.PutUint64(e.iov[8:], headerSize)
		le.PutUint64(e.iov[16:], uint64(uintptr(unsafe.Pointer(&e.payload[0]))))
		le.PutUint64(e.iov[24:], payloadSize)
		entries[i] = e
		r.queue(func(sqe []byte) { fuseCmd(sqe, devFd, cmdRegister, uint64(i), uint16(qid), 0, e.iov) })
	}
	ready <- nil
	outHeader := make([]byte, outHeaderSize)
	for done := false; !done; {
		if err := r.enter(); err != nil {
			return
		}
		r.reap(func(userData uint64, res int32) {
			if res != 0 || userData >= uint64(len(entries)) {
				done = true // -ENOTCONN: unmounted
				return
			}
			e := entries[userData]
			inLen := le.Uint32(e.header[0:])
			commitID := le.Uint64(e.header[entInOutOffset+8:])
			payloadLen := le.Uint32(e.header[entInOutOffset+16:])
			opInLen := int(inLen) - inHeaderSize - int(payloadLen)
			if opInLen < 0 || opInLen > maxOpInSize || payloadLen > payloadSize {
				opInLen, payloadLen = 0, 0 // ProtocolServer answers a short request with EIO
			}
			in := [][]byte{e.header[:inHeaderSize], e.header[opInOffset : opInOffset+opInLen], e.payload[:payloadLen]}
			n, _ := ps.HandleRequest(in, [][]byte{outHeader, e.payload})
			requests.Add(1)
			copy(e.header[:outHeaderSize], outHeader)
			le.PutUint32(e.header[entInOutOffset+16:], uint32(max(n-outHeaderSize, 0)))
			r.queue(func(sqe []byte) { fuseCmd(sqe, devFd, cmdCommitFetch, userData, uint16(qid), commitID, nil) })
		})
	}
}
