//go:build !linux

package daemon

// hostChecks: gitfs serve (the FUSE mount) needs Linux; everything else
// (repositories, checkouts, gc, the ws commands against a Linux daemon
// over a shared root) works here.
func hostChecks() []Check {
	return []Check{{Name: "fuse", Status: "warn", Detail: "gitfs serve needs Linux: here only repo, checkout, rev-parse, gc and df run",
		Fix: "run gitfs serve on a Linux host"}}
}

func mountChecks() []Check { return nil }

// killedDaemon: only Linux runs a daemon.
func killedDaemon(root string) (int, bool) { return 0, false }
