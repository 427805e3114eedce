//go:build linux

package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is the process on the other end of a control connection, as the
// kernel recorded it when it connected (SO_PEERCRED, SO_PEERGROUPS): every
// request is authorized by these, never by anything the request says.
type peer struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups
	pid      int32
	conn     *net.UnixConn // for SO_PEERPIDFD, asked only when needed
}

// withPeer records the connecting process's credentials. A connection
// whose credentials cannot be read carries none, and every request on it
// is refused.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		c = lc.UnixConn
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	var groups []uint32
	var gerr error
	cerr := raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			groups, gerr = peerGroups(int(fd))
		}
	})
	if cerr != nil || err != nil || cred == nil || gerr != nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, &peer{uid: cred.Uid, gid: cred.Gid, groups: groups, pid: cred.Pid, conn: uc})
}

func peerOf(ctx context.Context) (*peer, bool) {
	p, ok := ctx.Value(peerKey{}).(*peer)
	return p, ok && p != nil
}

// maxGroups is NGROUPS_MAX on Linux.
const maxGroups = 65536

// peerGroups reads SO_PEERGROUPS: the peer's supplementary groups when it
// connected.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 64*4)
	for {
		n := uint32(len(buf))
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == unix.ERANGE && int(n) > len(buf) && n <= maxGroups*4 {
			buf = make([]byte, n)
			continue
		}
		if e != 0 {
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", e)
		}
		out := make([]uint32, 0, n/4)
		for i := 0; i+4 <= int(n); i += 4 {
			out = append(out, binary.NativeEndian.Uint32(buf[i:]))
		}
		return out, nil
	}
}

// takeFD duplicates descriptor fd of the peer process into the daemon
// (pidfd_getfd on the pidfd the kernel recorded at connect time, so the
// process cannot have been replaced by another with the same pid). The
// caller opened that descriptor itself, with its own permissions, in its
// own mount namespace: the daemon then resolves no path on its behalf.
func (p *peer) takeFD(fd int) (int, error) {
	if fd < 0 || fd > 1<<20 {
		return -1, fmt.Errorf("descriptor %d: out of range", fd)
	}
	raw, err := p.conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	pidfd := -1
	var perr error
	if err := raw.Control(func(s uintptr) {
		pidfd, perr = unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_PEERPIDFD)
	}); err != nil {
		return -1, err
	}
	if perr != nil {
		return -1, fmt.Errorf("identify the calling process (SO_PEERPIDFD, Linux >= 6.5): %w", perr)
	}
	defer unix.Close(pidfd)
	got, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return -1, fmt.Errorf("take descriptor %d from the calling process: %w (a non-root daemon needs ptrace access to it: see kernel.yama.ptrace_scope)", fd, err)
		}
		return -1, fmt.Errorf("take descriptor %d from the calling process: %w", fd, err)
	}
	return got, nil
}
