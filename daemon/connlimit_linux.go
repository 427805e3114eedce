//go:build linux

package daemon

import (
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// maxConnsPerUID bounds the control connections one user (by SO_PEERCRED)
// keeps open at once. Every connection costs the daemon a descriptor and a
// goroutine (and a request's work): without a bound one user, opening
// connections and never closing them, runs the root daemon out of
// descriptors and stops every other user's requests and the mount's opens.
// Root is not bounded. 128 is far more than the CLI, which opens one per
// command, or a CI host's parallel jobs of one user need.
const maxConnsPerUID = 128

// tooManyConns is what a connection over the bound gets before it is
// closed: an HTTP answer, so that the CLI and curl say why.
const tooManyConns = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"

// limitListener accepts unix connections, counting each peer uid's open
// ones, and closes at once those over maxConnsPerUID. A connection whose
// credentials cannot be read is let through: withPeer then refuses its
// every request.
type limitListener struct {
	net.Listener
	max  int
	mu   sync.Mutex     // guards open; a leaf
	open map[uint32]int // open connections by peer uid (not root's)
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max, open: make(map[uint32]int)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return c, nil
		}
		uid, ok := peerUID(uc)
		if !ok || uid == 0 {
			return c, nil
		}
		if l.take(uid) {
			return &limitedConn{UnixConn: uc, release: func() { l.release(uid) }}, nil
		}
		refuse(uc)
	}
}

// take counts a connection of uid, or reports false if uid has max open.
func (l *limitListener) take(uid uint32) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[uid] >= l.max {
		return false
	}
	l.open[uid]++
	return true
}

func (l *limitListener) release(uid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[uid]--; l.open[uid] <= 0 {
		delete(l.open, uid)
	}
}

// refuse answers 503 and closes c. The answer fits the empty socket
// buffer of a fresh connection; the deadline only keeps a full one from
// holding up the accept loop.
func refuse(c *net.UnixConn) {
	body, _ := json.Marshal(errorBody{
		Error: fmt.Sprintf("too many open connections to the gitfs daemon from this user (at most %d): close some and retry", maxConnsPerUID),
		Kind:  "busy",
	})
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	fmt.Fprintf(c, tooManyConns, len(body)+1, string(body)+"\n")
	c.Close()
}

// peerUID reads the connecting process's uid (SO_PEERCRED).
func peerUID(c *net.UnixConn) (uint32, bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || gerr != nil || cred == nil {
		return 0, false
	}
	return cred.Uid, true
}

// limitedConn gives its uid's place back once closed (the HTTP server
// closes every connection it accepted).
type limitedConn struct {
	*net.UnixConn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.UnixConn.Close()
	c.once.Do(c.release)
	return err
}
