package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitfs/gitfs/locks"
)

func TestParseLockLine(t *testing.T) {
	const want = "fd:01:5678"
	for _, c := range []struct {
		line string
		pid  int
		ok   bool
	}{
		{"3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF", 1234, true},
		{"3: FLOCK  ADVISORY  READ 99 fd:01:5678 0 EOF", 99, true},
		{"3: -> FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF", 0, false}, // a waiter
		{"3: POSIX  ADVISORY  WRITE 1234 fd:01:5678 0 EOF", 0, false},
		{"3: FLOCK  ADVISORY  WRITE 1234 fd:01:5679 0 EOF", 0, false},
		{"3: FLOCK  ADVISORY  WRITE -1 fd:01:5678 0 EOF", 0, false},
		{"3: FLOCK", 0, false},
		{"", 0, false},
	} {
		pid, ok := parseLockLine(c.line, want)
		if pid != c.pid || ok != c.ok {
			t.Errorf("parseLockLine(%q) = %d, %v; want %d, %v", c.line, pid, ok, c.pid, c.ok)
		}
	}
}

func TestStatusDying(t *testing.T) {
	for _, c := range []struct {
		name, status string
		want         bool
	}{
		{"running", "Name:\tgitfs\nState:\tS (sleeping)\nShdPnd:\t0000000000000000\n", false},
		{"stuck in the kernel, not killed", "State:\tD (disk sleep)\nShdPnd:\t0000000000000000\n", false},
		{"SIGTERM pending", "State:\tS (sleeping)\nShdPnd:\t0000000000004000\n", false},
		{"killed, leader a zombie", "State:\tZ (zombie)\nShdPnd:\t0000000000000100\n", true},
		{"killed, leader still there", "State:\tD (disk sleep)\nShdPnd:\t0000000000000100\n", true},
		{"zombie", "State:\tZ (zombie)\nShdPnd:\t0000000000000000\n", true},
		{"garbage", "State\nShdPnd:\tzz\n", false},
	} {
		if got := statusDying(c.status); got != c.want {
			t.Errorf("%s: statusDying = %v, want %v", c.name, got, c.want)
		}
	}
	if dying(os.Getpid()) {
		t.Error("this test process counts as dying")
	}
}

// TestLockHolderFindsFlock: the daemon lock's holder is found by its
// file's device and inode in /proc/locks.
func TestLockHolderFindsFlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "daemon.lock")
	if _, ok := lockHolder(path); ok {
		t.Fatal("a holder of a lock file that does not exist")
	}
	l, err := locks.TryExclusive(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := lockHolder(path)
	if !ok || pid != os.Getpid() {
		t.Errorf("lockHolder = %d, %v; want this process, %d", pid, ok, os.Getpid())
	}
	l.Unlock()
	if pid, ok := lockHolder(path); ok {
		t.Errorf("lockHolder after unlock = %d", pid)
	}
}

// TestTakeOverLockLeavesLiveHolder: a live holder is never taken over;
// the refusal names it.
func TestTakeOverLockLeavesLiveHolder(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "locks"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "locks", "daemon.lock")
	l, err := locks.TryExclusive(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if err := writeDaemonRecord(root, daemonRecord{PID: os.Getpid(), Mountpoint: "/nowhere", Dev: 1}); err != nil {
		t.Fatal(err)
	}
	if r, ok := readDaemonRecord(root); !ok || r.PID != os.Getpid() || r.Mountpoint != "/nowhere" || r.Dev != 1 {
		t.Fatalf("record read back: %+v, %v", r, ok)
	}
	_, err = takeOverLock(root, path, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil {
		t.Fatal("took the lock over from a live daemon")
	}
	if want := "already running"; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q does not say %q", err, want)
	}
}
