package daemon

import (
	"context"
	"net"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is the user on the other end of a control connection: workspaces
// it creates belong to it, so it can write them under default_permissions.
type peer struct{ uid, gid uint32 }

// withPeer records the connecting process's credentials (SO_PEERCRED).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, peer{uid: cred.Uid, gid: cred.Gid})
}

func peerOf(ctx context.Context) (peer, bool) {
	p, ok := ctx.Value(peerKey{}).(peer)
	return p, ok
}
