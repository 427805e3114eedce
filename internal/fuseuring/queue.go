//go:build linux

package fuseuring

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The kernel completes a FUSE command through task work of the thread
// that submitted it, and puts each request into a free entry of the queue
// of the CPU its caller runs on. So each entry has an io_uring instance
// and an OS thread of its own that does nothing but wait for the entry's
// request, answer it, and in the same io_uring_enter commit the answer
// and wait for the next: one system call a round trip, and a handler
// that blocks holds up its entry alone. A queue's entries bound the
// requests its CPU has in the daemon at once; the kernel holds the rest
// until one is free.

// entry is one request slot of queue qid. header and payload are mapped
// outside Go's heap (the kernel writes them while no Go code looks);
// input is the entry's copy of a request's variable part, for requests
// whose answer is written into payload while the file system may still
// read what came in it (a GETXATTR's name and its value).
type entry struct {
	s                    *Server
	qid                  int
	r                    *uring
	header, payload, iov []byte
	outHeader            [outHeaderSize]byte
	input                []byte
	pending              bool  // register found a request in the entry already
	pendingRes           int32 // its result
}

// serveEntry registers one entry of queue qid, reports on ready whether
// the kernel took it, and serves it until the connection ends. It keeps
// its goroutine's thread for good (the thread ends with it).
func (s *Server) serveEntry(qid int, ready chan<- error) {
	runtime.LockOSThread()
	e, err := s.newEntry(qid)
	if err == nil {
		err = e.register()
	}
	ready <- err
	if err != nil {
		if e != nil {
			e.release()
		}
		return
	}
	defer e.release()
	for {
		res, ok := e.next()
		if !ok || res < 0 {
			return // -ENOTCONN, -ECANCELED: the connection ended
		}
		e.answer()
		e.r.push(func(sqe []byte) {
			fuseCmd(sqe, s.devFd, cmdCommitFetch, 0, uint16(qid), binary.LittleEndian.Uint64(e.header[entInOutOffset+8:]), nil)
		})
		if e.r.enter(1, true) != nil {
			return
		}
	}
}

func (s *Server) newEntry(qid int) (*entry, error) {
	r, err := newURing(4)
	if err != nil {
		return nil, err
	}
	e := &entry{s: s, qid: qid, r: r, iov: make([]byte, 32)}
	if e.header, err = mapAnon(headerSize); err == nil {
		e.payload, err = mapAnon(s.bufLen)
	}
	if err != nil {
		e.release()
		return nil, err
	}
	le := binary.LittleEndian
	le.PutUint64(e.iov[0:], uint64(uintptr(unsafe.Pointer(&e.header[0]))))
	le.PutUint64(e.iov[8:], headerSize)
	le.PutUint64(e.iov[16:], uint64(uintptr(unsafe.Pointer(&e.payload[0]))))
	le.PutUint64(e.iov[24:], uint64(len(e.payload)))
	return e, nil
}

// register hands the entry to the kernel. A refusal completes at once;
// an entry taken completes only when a request is in it.
func (e *entry) register() error {
	e.r.push(func(sqe []byte) { fuseCmd(sqe, e.s.devFd, cmdRegister, 0, uint16(e.qid), 0, e.iov) })
	if err := e.r.enter(1, false); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	var res int32
	refused := false
	e.r.reap(func(_ uint64, r int32) { res, refused = r, true })
	if refused && res < 0 {
		return fmt.Errorf("register: %w", unix.Errno(-res))
	}
	e.pending = refused // a request already: next takes it
	e.pendingRes = res
	return nil
}

// next waits for the entry's next completion and returns its result.
func (e *entry) next() (res int32, ok bool) {
	if e.pending {
		e.pending = false
		return e.pendingRes, true
	}
	for {
		got := false
		e.r.reap(func(_ uint64, r int32) { res, got = r, true })
		if got {
			return res, true
		}
		if e.r.enter(0, true) != nil {
			return 0, false
		}
	}
}

// answer serves the request in the entry and writes the answer's header
// and size where the commit takes them.
func (e *entry) answer() {
	le := binary.LittleEndian
	inLen := le.Uint32(e.header[0:])
	opcode := le.Uint32(e.header[4:])
	payloadLen := int(le.Uint32(e.header[entInOutOffset+16:]))
	opInLen := int(inLen) - inHeaderSize - payloadLen
	if opInLen < 0 || opInLen > maxOpInSize || payloadLen > len(e.payload) {
		opInLen, payloadLen = 0, 0 // too short: the ProtocolServer answers EIO
	}
	payload := e.payload[:payloadLen]
	if opcode != opcodeWrite && payloadLen > 0 {
		e.input = append(e.input[:0], payload...)
		payload = e.input
	}
	in := [][]byte{e.header[:inHeaderSize], e.header[opInOffset : opInOffset+opInLen], payload}
	n, st := e.s.ps.HandleRequest(in, [][]byte{e.outHeader[:], e.payload})
	e.s.ringReqs.Add(1)
	if n < outHeaderSize {
		if st == fuse.OK {
			st = fuse.EIO // every request through a queue needs an answer
		}
		n = errorReply(e.outHeader[:], e.header[:inHeaderSize], st)
	}
	copy(e.header[:outHeaderSize], e.outHeader[:])
	le.PutUint32(e.header[entInOutOffset+16:], uint32(n-outHeaderSize))
}

// release closes the ring, which ends its command, then unmaps the
// buffers.
func (e *entry) release() {
	e.r.close()
	if e.header != nil {
		unix.Munmap(e.header)
	}
	if e.payload != nil {
		unix.Munmap(e.payload)
	}
}
