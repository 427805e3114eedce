package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A mount point left behind by a daemon that died (kill -9, OOM, an
// aborted FUSE connection) still holds its FUSE mount, and every access to
// it fails with ENOTCONN: mkdir says "file exists", mount says nothing
// useful. Start heals such a mount point by itself, but only when the dead
// mount is gitfs's own: a live mount is another daemon's to stop, and
// another file system's mount is its owner's to remove.

// fsType is the type gitfs's mounts have in /proc/self/mountinfo (go-fuse
// names it "fuse." plus MountOptions.Name).
const fsType = "fuse.gitfs"

// MountEntry is one line of /proc/self/mountinfo.
type MountEntry struct {
	Point  string // where it is mounted
	FSType string // e.g. fuse.gitfs
	Source string
	Dev    uint64 // the mount's st_dev (its FUSE connection number is the minor)
}

// Mounts lists the mounts of this process's mount namespace.
func Mounts() ([]MountEntry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	defer f.Close()
	var out []MountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if e, ok := parseMountInfo(sc.Text()); ok {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// parseMountInfo parses one mountinfo line (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseMountInfo(line string) (MountEntry, bool) {
	fields := strings.Fields(line)
	sep := -1
	for i, f := range fields {
		if f == "-" && i >= 6 {
			sep = i
			break
		}
	}
	if sep < 0 || sep+2 >= len(fields) {
		return MountEntry{}, false
	}
	e := MountEntry{Point: unescapeMount(fields[4]), FSType: fields[sep+1], Source: unescapeMount(fields[sep+2])}
	if maj, min, ok := strings.Cut(fields[2], ":"); ok {
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(min, 10, 32)
		if err1 == nil && err2 == nil {
			e.Dev = unix.Mkdev(uint32(a), uint32(b))
		}
	}
	return e, true
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space, \011,
// \012, \134) in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountAt returns the topmost mount at path, if any.
func mountAt(path string) (MountEntry, bool, error) {
	all, err := Mounts()
	if err != nil {
		return MountEntry{}, false, err
	}
	var found MountEntry
	ok := false
	for _, e := range all {
		if e.Point == path {
			found, ok = e, true // later lines are mounted over earlier ones
		}
	}
	return found, ok, nil
}

// probeTimeout bounds how long a probe waits for a mount to answer. A live
// but wedged daemon may never answer; a dead mount answers at once.
const probeTimeout = 3 * time.Second

// errNoAnswer is a probe that timed out.
var errNoAnswer = errors.New("no answer")

// probe asks the file system mounted at path for its statfs: nil for a
// live mount, ENOTCONN or ECONNABORTED for a dead FUSE mount, errNoAnswer
// for one that does not answer in time. Not stat: the kernel answers that
// from its attribute cache (an hour for gitfs) without asking the daemon,
// dead or alive; statfs always reaches the daemon.
func probe(path string) error {
	done := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		done <- unix.Statfs(path, &st)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(probeTimeout):
		return errNoAnswer
	}
}

// IsDead reports whether err is what a FUSE mount whose daemon is gone
// answers.
func IsDead(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// healMountpoint makes mp mountable: nothing mounted there, or a dead
// gitfs mount, which it detaches (MNT_DETACH: processes still inside keep
// their failing descriptors, the name is free at once). A live mount, or
// another file system's, is refused with what to do.
func healMountpoint(mp string, log *slog.Logger) error {
	e, mounted, err := mountAt(mp)
	if err != nil || !mounted {
		return err
	}
	perr := probe(mp)
	switch {
	case perr == nil:
		return fmt.Errorf("mountpoint %s is already mounted (%s, answering): another 'gitfs serve' or another file system serves it; stop that one or choose another --mountpoint", mp, e.FSType)
	case errors.Is(perr, errNoAnswer):
		return fmt.Errorf("mountpoint %s is mounted (%s) and does not answer within %v: its daemon is alive but stuck; stop it, or detach the mount (umount -l %s) if it is dead", mp, e.FSType, probeTimeout, mp)
	case !IsDead(perr):
		return fmt.Errorf("mountpoint %s is mounted (%s) and fails: %w", mp, e.FSType, perr)
	case e.FSType != fsType:
		return fmt.Errorf("mountpoint %s holds a dead %s mount that is not gitfs's: remove it (fusermount3 -u -z %s, or umount -l as root) or choose another --mountpoint", mp, e.FSType, mp)
	}
	if err := detach(mp); err != nil {
		return fmt.Errorf("mountpoint %s holds the dead mount of a gitfs that died: detaching it failed: %w", mp, err)
	}
	log.Warn("detached the dead mount of a gitfs that died (kill -9, crash or aborted FUSE connection); mounting again", "mountpoint", mp, "fuse_connection", unix.Minor(e.Dev))
	return nil
}

// detach lazily unmounts mp: directly as root, else through fusermount3,
// which lets a user unmount what they mounted.
func detach(mp string) error {
	err := unix.Unmount(mp, unix.MNT_DETACH)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	out, ferr := exec.Command("fusermount3", "-u", "-z", mp).CombinedOutput()
	if ferr != nil {
		return fmt.Errorf("fusermount3 -u -z: %v: %s", ferr, strings.TrimSpace(string(out)))
	}
	return nil
}

// WhyUnmounted says why the mount at mp stopped serving when the daemon
// did not ask it to: its FUSE connection was aborted (the mount is still
// there, dead) or someone unmounted it.
func WhyUnmounted(mp string) error {
	e, mounted, _ := mountAt(mp)
	if mounted && e.FSType == fsType && IsDead(probe(mp)) {
		return fmt.Errorf("the FUSE connection of %s was aborted (fuse connection %d): the kernel no longer sends requests; restart 'gitfs serve', which detaches the dead mount", mp, unix.Minor(e.Dev))
	}
	return fmt.Errorf("%s was unmounted by someone else while serving", mp)
}

// fuseConf is where fusermount3 reads user_allow_other.
var fuseConf = "/etc/fuse.conf"

// ownerOnlyMount reports whether the mount must go without allow_other: a
// non-root daemon mounts through fusermount3, which refuses allow_other
// unless /etc/fuse.conf says user_allow_other (stock Debian does not). It
// says so, since other users, root included, then cannot use the mount.
func ownerOnlyMount(log *slog.Logger) bool {
	if os.Geteuid() == 0 {
		return false
	}
	b, err := os.ReadFile(fuseConf)
	if err == nil && userAllowOther(string(b)) {
		return false
	}
	log.Warn("mounting without allow_other: only this user can use the mount (not other users, not root); add a line user_allow_other to "+fuseConf+" to share it",
		"uid", os.Geteuid())
	return true
}

// userAllowOther reports whether a fuse.conf enables user_allow_other: the
// option alone on a line, not commented out.
func userAllowOther(conf string) bool {
	for _, l := range strings.Split(conf, "\n") {
		if strings.TrimSpace(l) == "user_allow_other" {
			return true
		}
	}
	return false
}

// CheckFUSE explains what stops this process from mounting, before
// fusermount3 fails with an exit code: no /dev/fuse, or (not root) a
// /dev/fuse the user may not open (fusermount3 opens it as the user; udev
// and the fuse3 package make it 0666), or no fusermount3.
func CheckFUSE() error {
	fi, err := os.Stat("/dev/fuse")
	if err != nil {
		return fmt.Errorf("/dev/fuse is missing: load the fuse module (modprobe fuse), or run the container with --device /dev/fuse")
	}
	if os.Geteuid() == 0 {
		return nil
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		return fmt.Errorf("not running as root and fusermount3 is not installed: install fuse3 (apt-get install fuse3), or run gitfs serve as root")
	}
	if err := unix.Access("/dev/fuse", unix.R_OK|unix.W_OK); err != nil {
		return fmt.Errorf("/dev/fuse (mode %04o) may not be opened by uid %d, so fusermount3 cannot mount: chmod 0666 /dev/fuse, as udev does, or run gitfs serve as root", fi.Mode().Perm(), os.Geteuid())
	}
	return nil
}

// ProbeMount asks the file system mounted at path to answer (statfs): nil
// when it does, an error IsDead reports for a dead FUSE mount.
func ProbeMount(path string) error { return probe(path) }
