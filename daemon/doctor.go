package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/mirror"
)

// Check is one finding of Doctor.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "ok", "warn" or "fail"
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"` // what to do, when not ok
}

// Doctor checks what `gitfs serve` needs on this host, for this process's
// user and root: FUSE, fusermount3, /etc/fuse.conf, git, the root's
// permissions, dead gitfs mounts, free disk, and whether a daemon answers.
// It changes nothing.
func Doctor(ctx context.Context, root string) []Check {
	var out []Check
	add := func(name, status, detail, fix string) {
		out = append(out, Check{Name: name, Status: status, Detail: detail, Fix: fix})
	}

	out = append(out, hostChecks()...)

	// git.
	if err := mirror.CheckGit(); err != nil {
		add("git", "fail", err.Error(), "install git >= 2.38")
	} else {
		v, _ := exec.Command("git", "--version").Output()
		add("git", "ok", strings.TrimSpace(string(v)), "")
	}

	out = append(out, checkRootDir(root)...)
	out = append(out, mountChecks()...)
	out = append(out, checkDisk(root)...)

	// The daemon.
	c := NewClient(root)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if st, err := c.Running(cctx); err != nil {
		if pid, ok := killedDaemon(root); ok {
			add("daemon", "fail", fmt.Sprintf("the daemon (pid %d) was killed but cannot exit: it is stuck in the kernel on its FUSE connection, and readers of its mount hang", pid),
				"gitfs --root "+root+" serve --mountpoint DIR aborts that connection and takes over")
		} else {
			add("daemon", "warn", "no daemon answers at "+filepath.Join(root, SocketName), "start it: gitfs --root "+root+" serve --mountpoint DIR")
		}
	} else {
		add("daemon", "ok", fmt.Sprintf("pid %d serves %s at %s", st.PID, root, st.Mountpoint), "")
	}
	return out
}

// checkRootDir applies PrepareRoot's rules without changing anything.
func checkRootDir(root string) []Check {
	abs, err := filepath.Abs(root)
	if err != nil {
		return []Check{{Name: "root", Status: "fail", Detail: err.Error(), Fix: "choose another --root"}}
	}
	euid := uint32(os.Geteuid())
	real, exists, err := rootPath.walk(abs, euid, 0)
	if err != nil {
		return []Check{{Name: "root", Status: "fail", Detail: err.Error(), Fix: "choose a root whose path only root or you may change (--root or GITFS_ROOT)"}}
	}
	if !exists {
		return []Check{{Name: "root", Status: "ok", Detail: abs + " does not exist yet; gitfs creates it (0711)"}}
	}
	var out []Check
	fi, err := os.Lstat(real)
	if err != nil || !fi.IsDir() {
		return []Check{{Name: "root", Status: "fail", Detail: abs + " is not a directory", Fix: "choose another --root"}}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != euid {
		return []Check{{Name: "root", Status: "fail", Detail: fmt.Sprintf("%s belongs to uid %d, not to you (uid %d)", abs, st.Uid, euid), Fix: "run as its owner, or choose a root of your own"}}
	}
	if fi.Mode().Perm() != 0o711 {
		out = append(out, Check{Name: "root", Status: "warn", Detail: fmt.Sprintf("%s is %04o, not 0711", abs, fi.Mode().Perm()), Fix: "gitfs sets it when it next opens the root, or chmod 0711 " + abs})
	}
	for _, sub := range rootDirs {
		p := filepath.Join(real, sub)
		fi, err := os.Lstat(p)
		if err != nil {
			continue // made when needed
		}
		if fi.Mode().Perm() != 0o700 || !fi.IsDir() {
			out = append(out, Check{Name: "root", Status: "warn", Detail: fmt.Sprintf("%s is %v, not a 0700 directory", p, fi.Mode()), Fix: "gitfs sets it when it next opens the root, or chmod 0700 " + p})
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "root", Status: "ok", Detail: abs + " (0711, its directories 0700, yours)"})
	}
	return out
}

// checkDisk reports the free space and inodes of the root's file system:
// mirrors, snapshots and upper layers all live there.
func checkDisk(root string) []Check {
	dir := root
	for {
		if _, err := os.Stat(dir); err == nil || dir == "/" || dir == "." {
			break
		}
		dir = filepath.Dir(dir)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(dir, &sfs); err != nil {
		return []Check{{Name: "disk", Status: "warn", Detail: err.Error()}}
	}
	free := sfs.Bavail * uint64(sfs.Bsize)
	total := sfs.Blocks * uint64(sfs.Bsize)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(free) / float64(total)
	}
	detail := fmt.Sprintf("%.1f GiB free of %.1f GiB (%.0f%%) under %s", float64(free)/(1<<30), float64(total)/(1<<30), pct, dir)
	fix := "gitfs gc --snapshot-ttl 24h drops old snapshots; gitfs df shows what uses the space"
	switch {
	case free < 1<<30:
		return []Check{{Name: "disk", Status: "fail", Detail: detail, Fix: fix}}
	case pct < 10:
		return []Check{{Name: "disk", Status: "warn", Detail: detail, Fix: fix}}
	case sfs.Files > 0 && sfs.Ffree*20 < sfs.Files:
		return []Check{{Name: "disk", Status: "warn", Detail: fmt.Sprintf("%d inodes free of %d under %s", sfs.Ffree, sfs.Files, dir), Fix: fix}}
	}
	return []Check{{Name: "disk", Status: "ok", Detail: detail}}
}
