package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/internal/fuseuring"
)

// hostChecks are Doctor's checks of FUSE: the kernel's, /dev/fuse,
// fusermount3 and /etc/fuse.conf, for this process's user.
func hostChecks() []Check {
	var out []Check
	add := func(name, status, detail, fix string) {
		out = append(out, Check{Name: name, Status: status, Detail: detail, Fix: fix})
	}
	isRoot := os.Geteuid() == 0

	// FUSE in the kernel and its device.
	if fi, err := os.Stat("/dev/fuse"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		add("fuse", "fail", "/dev/fuse is missing", "load the module (modprobe fuse); in a container, pass --device /dev/fuse (and --cap-add SYS_ADMIN for a root daemon)")
	} else if b, err := os.ReadFile("/proc/filesystems"); err == nil && !strings.Contains(string(b), "\tfuse\n") {
		add("fuse", "fail", "the kernel lists no fuse file system in /proc/filesystems", "modprobe fuse")
	} else if !isRoot && unix.Access("/dev/fuse", unix.R_OK|unix.W_OK) != nil {
		add("fuse", "fail", fmt.Sprintf("/dev/fuse (mode %04o) may not be opened by uid %d, so fusermount3 cannot mount", fi.Mode().Perm(), os.Geteuid()), "chmod 0666 /dev/fuse (udev's default), or run gitfs serve as root")
	} else {
		add("fuse", "ok", fmt.Sprintf("/dev/fuse present (mode %04o)", fi.Mode().Perm()), "")
	}

	// fusermount3: how a user mounts; root mounts with mount(2).
	fm, err := exec.LookPath("fusermount3")
	switch {
	case err != nil && isRoot:
		add("fusermount3", "ok", "not installed; not needed as root (mount(2) directly)", "")
	case err != nil:
		add("fusermount3", "fail", "not installed: a non-root daemon mounts through it", "apt-get install fuse3 (or dnf install fuse3), or run gitfs serve as root")
	default:
		var st unix.Stat_t
		if unix.Stat(fm, &st) == nil && (st.Uid != 0 || st.Mode&unix.S_ISUID == 0) && !isRoot {
			add("fusermount3", "fail", fm+" is not setuid root, so it cannot mount for users", "chown root "+fm+" && chmod u+s "+fm)
		} else {
			add("fusermount3", "ok", fm, "")
		}
	}

	// FUSE over io_uring (serve --io-uring), which is optional: ok either way.
	switch err := fuseuring.Enabled(); {
	case err == nil && isRoot:
		add("io_uring", "ok", "FUSE over io_uring is on (enable_uring): serve --io-uring may use it", "")
	case err == nil:
		add("io_uring", "ok", "FUSE over io_uring is on, but serve --io-uring needs a daemon running as root", "")
	default:
		add("io_uring", "ok", "serve --io-uring would serve through /dev/fuse: "+err.Error(), "")
	}

	// allow_other for non-root mounts.
	conf, cerr := os.ReadFile(fuseConf)
	switch {
	case isRoot:
		add("fuse.conf", "ok", "allow_other needs no user_allow_other as root", "")
	case cerr == nil && userAllowOther(string(conf)):
		add("fuse.conf", "ok", fuseConf+" has user_allow_other: the mount is shared (allow_other)", "")
	default:
		add("fuse.conf", "warn", fuseConf+" lacks user_allow_other: the mount will be usable by uid "+fmt.Sprint(os.Geteuid())+" alone, not by other users or root",
			"add a line user_allow_other to "+fuseConf+" (as root)")
	}

	return out
}

// mountChecks reports gitfs mounts that died with their daemon.
func mountChecks() []Check {
	all, err := Mounts()
	if err != nil {
		return []Check{{Name: "mounts", Status: "warn", Detail: err.Error()}}
	}
	var out []Check
	live := 0
	for _, e := range all {
		if e.FSType != fsType {
			continue
		}
		switch err := probe(e.Point); {
		case err == nil, errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			live++ // answered, or another user's that we may not enter
		case IsDead(err):
			out = append(out, Check{Name: "mounts", Status: "fail", Detail: "dead gitfs mount at " + e.Point + " (its daemon died)",
				Fix: "gitfs serve --mountpoint " + e.Point + " detaches it and mounts again; or umount -l " + e.Point})
		default:
			out = append(out, Check{Name: "mounts", Status: "warn", Detail: fmt.Sprintf("gitfs mount at %s does not answer: %v", e.Point, err),
				Fix: fmt.Sprintf("check its daemon; if it was killed and cannot exit (stuck in the kernel), gitfs serve of its root aborts the connection and takes over, or abort it by hand: echo 1 > %s/%d/abort", fusectlDir, unix.Minor(e.Dev))})
		}
	}
	if len(out) == 0 {
		out = append(out, Check{Name: "mounts", Status: "ok", Detail: fmt.Sprintf("no dead gitfs mount (%d live)", live)})
	}
	return out
}
