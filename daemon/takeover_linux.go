package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gitfs/gitfs/locks"
)

// A daemon killed (kill -9, the OOM killer) while it pushed a file into
// the page cache (NOTIFY_STORE) can fail to die: the kernel's store waits,
// uninterruptibly, for a page that a reader's READ holds locked, and the
// READ waits for the daemon. Its last thread stays in the kernel, so its
// descriptors stay open: the FUSE connection (every reader hangs), and
// the daemon lock (the next serve is refused). Nothing ends it but
// aborting the connection. The daemon can not avoid the race: the kernel
// locks a page before it sends the READ that the daemon could see.
//
// So each daemon records which connection it serves (daemonRecord), and
// Start, finding the lock held by a daemon that was killed and is stuck,
// aborts that connection and takes the lock. A daemon that is alive, even
// a stuck one, is never touched: it is its owner's to stop.

// daemonLockPath is the flock one daemon per root holds, and
// daemonRecordPath its record, both in ROOT/locks (0700, the daemon
// user's).
func daemonLockPath(root string) string   { return filepath.Join(root, "locks", "daemon.lock") }
func daemonRecordPath(root string) string { return filepath.Join(root, "locks", "daemon.mount") }

// daemonRecord says which FUSE connection the daemon holding the lock serves.
type daemonRecord struct {
	PID        int    `json:"pid"`
	Mountpoint string `json:"mountpoint"`
	Dev        uint64 `json:"dev"` // the mount's st_dev; its minor is the connection number
}

// writeDaemonRecord records this process's mount; the lock is held.
func writeDaemonRecord(root string, r daemonRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := daemonRecordPath(root)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the daemon's mount: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record the daemon's mount: %w", err)
	}
	return nil
}

// readDaemonRecord reads the record a daemon left; ok is false when there
// is none or it is unreadable (then there is nothing to act on).
func readDaemonRecord(root string) (daemonRecord, bool) {
	b, err := os.ReadFile(daemonRecordPath(root))
	if err != nil || len(b) > 64<<10 {
		return daemonRecord{}, false
	}
	var r daemonRecord
	if json.Unmarshal(b, &r) != nil || r.PID <= 0 {
		return daemonRecord{}, false
	}
	return r, true
}

// lockHolder finds the process holding a flock on path, from /proc/locks
// (whose device is major:minor in hex, then the inode number).
func lockHolder(path string) (int, bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0, false
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if pid, ok := parseLockLine(sc.Text(), want); ok {
			return pid, true
		}
	}
	return 0, false
}

// parseLockLine reads the pid of one /proc/locks line (proc(5)) when it is
// a held (not waiting, "->") FLOCK on the file want names:
//
//	3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF
func parseLockLine(line, want string) (int, bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want {
		return 0, false
	}
	pid, err := strconv.Atoi(fields[4])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// dying reports whether process pid was killed and has not finished
// exiting: its thread group has a fatal signal pending (SIGKILL in
// ShdPnd), or its leader is a zombie while other threads remain.
func dying(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	return statusDying(string(b))
}

// statusDying is dying of the text of /proc/PID/status.
func statusDying(status string) bool {
	for _, l := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			if strings.HasPrefix(v, "Z") {
				return true
			}
		case "ShdPnd":
			if m, err := strconv.ParseUint(v, 16, 64); err == nil && m&(1<<(unix.SIGKILL-1)) != 0 {
				return true
			}
		}
	}
	return false
}

// killedDaemon reports the pid of a daemon of root that was killed but
// still holds the daemon lock (for doctor).
func killedDaemon(root string) (int, bool) {
	pid, ok := lockHolder(daemonLockPath(root))
	return pid, ok && dying(pid)
}

// takeOverTimeout bounds the wait for a killed daemon to finish dying
// once its connection is aborted (it needs no more than its exit).
const takeOverTimeout = 15 * time.Second

// takeOverLock is called when the daemon lock at lockPath is held. If its
// holder is a killed daemon stuck in the kernel, it aborts the FUSE
// connection the holder recorded, waits for it to die and returns the
// lock. Otherwise it says who holds the lock.
func takeOverLock(root, lockPath string, log *slog.Logger) (*locks.File, error) {
	running := fmt.Errorf("another 'gitfs serve' is already running for root %s", root)
	pid, ok := lockHolder(lockPath)
	if !ok {
		return nil, running
	}
	running = fmt.Errorf("another 'gitfs serve' (pid %d) is already running for root %s", pid, root)
	if !dying(pid) {
		return nil, running
	}
	rec, ok := readDaemonRecord(root)
	if !ok || rec.PID != pid {
		return nil, fmt.Errorf("the last 'gitfs serve' of root %s (pid %d) was killed but cannot exit, and left no record of its FUSE connection: abort it (echo 1 > /sys/fs/fuse/connections/N/abort, N the minor of its mount's device), then serve again", root, pid)
	}
	conn := unix.Minor(rec.Dev)
	// The connection number is the mount's device number, which the
	// kernel reuses once that mount is gone: abort it only while a gitfs
	// mount still has it.
	if !gitfsMountHas(rec.Dev) {
		return nil, fmt.Errorf("the last 'gitfs serve' of root %s (pid %d) was killed but cannot exit, and no gitfs mount has its fuse connection %d any more (it served %s): abort that connection by hand if it is still listed in %s, then serve again", root, pid, conn, rec.Mountpoint, fusectlDir)
	}
	log.Warn("the last daemon of this root was killed but is stuck in the kernel (a page-cache push raced a read): aborting its FUSE connection", "pid", pid, "mountpoint", rec.Mountpoint, "fuse_connection", conn)
	if err := abortConnection(conn); err != nil {
		return nil, fmt.Errorf("the last 'gitfs serve' of root %s (pid %d) was killed but is stuck on fuse connection %d of %s: %w", root, pid, conn, rec.Mountpoint, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), takeOverTimeout)
	defer cancel()
	lock, err := locks.Exclusive(ctx, lockPath)
	if err != nil {
		return nil, fmt.Errorf("aborted fuse connection %d of the killed daemon (pid %d), but it still holds root %s's lock after %v: %w", conn, pid, root, takeOverTimeout, err)
	}
	return lock, nil
}

// gitfsMountHas reports whether a gitfs mount of this namespace has device dev.
func gitfsMountHas(dev uint64) bool {
	all, err := Mounts()
	if err != nil {
		return false
	}
	for _, e := range all {
		if e.Dev == dev && e.FSType == fsType {
			return true
		}
	}
	return false
}

// fusectlDir is where the kernel's fusectl file system lists connections.
var fusectlDir = "/sys/fs/fuse/connections"

// abortConnection aborts FUSE connection conn: its pending and future
// requests fail with ECONNABORTED. The abort file belongs to the user who
// mounted, so a non-root daemon may abort its own. fusectl is mounted
// first if the system has not (systemd does at boot; a container may not),
// which only root may.
func abortConnection(conn uint32) error {
	dir := filepath.Join(fusectlDir, strconv.FormatUint(uint64(conn), 10))
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) && os.Geteuid() == 0 {
		if err := unix.Mount("fusectl", fusectlDir, "fusectl", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount fusectl on %s: %w", fusectlDir, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "abort"), os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("abort the connection: %w (is fusectl mounted on %s?)", err, fusectlDir)
	}
	_, err = f.WriteString("1\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("abort the connection: %w", err)
	}
	return nil
}
