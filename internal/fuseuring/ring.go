//go:build linux

package fuseuring

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's ABI (include/uapi/linux/io_uring.h and fuse.h): an SQE of
// 128 bytes (IORING_SETUP_SQE128) carries an IORING_OP_URING_CMD whose
// last 80 bytes are a struct fuse_uring_cmd_req. An entry's header buffer
// is a struct fuse_uring_req_header: the request's fuse_in_header (the
// answer's fuse_out_header) at 0, its op's own struct at 128, and the
// entry's fuse_uring_ent_in_out (commit id at 264, payload size at 272)
// at 256.
const (
	setupSQE128    = 1 << 10
	opURingCmd     = 46
	cmdRegister    = 1
	cmdCommitFetch = 2
	enterGetEvents = 1
	offSQEs        = 0x10000000
	sqeSize        = 128
	cqeSize        = 16
	sqeCmdOffset   = 48
	sizeOfParams   = 120

	headerSize     = 4096 // one page; the kernel uses the first 288 bytes
	opInOffset     = 128
	maxOpInSize    = 128
	entInOutOffset = 256
	inHeaderSize   = 40
	outHeaderSize  = 16
)

// uring is one io_uring instance with its rings mapped.
type uring struct {
	fd                            int
	ring, sqes                    []byte
	sqTail, sqMask, sqArray       uint32
	cqHead, cqTail, cqMask, cqOff uint32
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
		r.close()
		return nil, fmt.Errorf("mmap io_uring rings: %w", err)
	}
	if r.sqes, err = unix.Mmap(r.fd, offSQEs, int(sqEntries*sqeSize), prot, flags); err != nil {
		r.close()
		return nil, fmt.Errorf("mmap io_uring SQEs: %w", err)
	}
	return r, nil
}

func (r *uring) close() {
	if r.sqes != nil {
		unix.Munmap(r.sqes)
	}
	if r.ring != nil {
		unix.Munmap(r.ring)
	}
	unix.Close(r.fd)
}

// push adds one SQE, filled by fill. Caller serializes (queue.subMu).
func (r *uring) push(fill func(sqe []byte)) {
	tail := atomic.LoadUint32(word(r.ring, r.sqTail))
	idx := tail & *word(r.ring, r.sqMask)
	sqe := r.sqes[idx*sqeSize : (idx+1)*sqeSize]
	clear(sqe)
	fill(sqe)
	*word(r.ring, r.sqArray+idx*4) = idx
	atomic.StoreUint32(word(r.ring, r.sqTail), tail+1)
}

// enter submits n SQEs and, if wait, waits for a completion.
func (r *uring) enter(n uint32, wait bool) error {
	minComplete, flags := uintptr(0), uintptr(0)
	if wait {
		minComplete, flags = 1, enterGetEvents
	}
	for {
		_, _, e := syscall.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n), minComplete, flags, 0, 0)
		if e == syscall.EINTR {
			// Go's preemption signals interrupt the wait. Asking again to
			// submit n is safe: the kernel submits only what the ring
			// still holds, none if the first call took it.
			continue
		}
		if e != 0 {
			return fmt.Errorf("io_uring_enter: %w", e)
		}
		return nil
	}
}

// reap calls f for each completion and consumes them. Only the queue's
// owner reaps.
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

// fuseCmd fills sqe with a FUSE URING_CMD on devFd.
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
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}
