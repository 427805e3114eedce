package snapshot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Batch inflates blobs through one long-lived `git cat-file --batch` over
// the snapshot's pinned packs (never the mirror: GIT_OBJECT_DIRECTORY is
// the snapshot's own objects directory). C zlib inflates about twice as
// fast as Go's compress/flate here (fill.go has the numbers), which is
// what bounds a checkout of blobs the store does not hold.
//
// A Batch is for one goroutine, which OpenBatch locks to its OS thread
// until Close: git is killed when the thread that started it ends, so
// that it never outlives a daemon that crashed. Ask for blobs with
// Request, then Read each of them, in the order asked. Requests may run
// ahead of reads (git answers into a pipe of pipeBytes), but a request
// of more ids than that pipe holds must come from another goroutine, or
// git and the reader stall each other.
type Batch struct {
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	in      *bufio.Writer
	stdin   io.Closer
	out     *bufio.Reader
	stderr  strings.Builder
	locked  bool
	pending int   // ids asked for and not read yet
	err     error // sticky: a Batch that failed once answers nothing more
}

// ErrNoGit means git cannot be run here: inflate with Go (Stream).
var ErrNoGit = errors.New("git not available")

// pipeBytes is asked of the kernel for git's answers, so that git keeps
// inflating while its reader writes what it read (the default is 64 KiB;
// an unprivileged process may raise it to fs.pipe-max-size, 1 MiB).
const pipeBytes = 1 << 20

// OpenBatch starts git cat-file --batch over the snapshot's packs, or
// returns ErrNoGit when git cannot be started.
func (s *Snapshot) OpenBatch(ctx context.Context) (*Batch, error) {
	gitDir, err := s.store.readerGitDir()
	if err != nil {
		return nil, ErrNoGit
	}
	git, err := exec.LookPath("git")
	if err != nil {
		return nil, ErrNoGit
	}
	ctx, cancel := context.WithCancel(ctx)
	b := &Batch{cancel: cancel}
	b.cmd = exec.CommandContext(ctx, git, "cat-file", "--batch")
	b.cmd.Env = readerEnv(gitDir, s.ObjectsDir())
	b.cmd.SysProcAttr = &syscall.SysProcAttr{}
	if dieWithParent(b.cmd.SysProcAttr) {
		runtime.LockOSThread()
		b.locked = true
	}
	b.cmd.Stderr = &b.stderr
	stdin, err := b.cmd.StdinPipe()
	if err == nil {
		var stdout io.ReadCloser
		if stdout, err = b.cmd.StdoutPipe(); err == nil {
			if f, ok := stdout.(*os.File); ok {
				growPipe(f, pipeBytes)
			}
			b.stdin, b.in, b.out = stdin, bufio.NewWriter(stdin), bufio.NewReaderSize(stdout, 256<<10)
			err = b.cmd.Start()
		}
	}
	if err != nil {
		b.unlock()
		cancel()
		return nil, ErrNoGit
	}
	return b, nil
}

// Request asks for ids, to be read in this order after those asked before.
func (b *Batch) Request(ids ...ID) error {
	if b.err != nil {
		return b.err
	}
	for _, id := range ids {
		b.in.WriteString(id.String())
		b.in.WriteByte('\n')
	}
	b.pending += len(ids)
	if err := b.in.Flush(); err != nil {
		b.err = b.failed(fmt.Errorf("git cat-file: %w", err))
	}
	return b.err
}

// Read reads the next blob asked for, which must be id: fn gets its size
// and a reader of exactly its bytes (what fn leaves unread is skipped).
// An error of fn is returned as it is; any other error names the blob.
func (b *Batch) Read(id ID, fn func(r io.Reader, size int64) error) error {
	if b.err != nil {
		return b.err
	}
	b.pending--
	line, err := b.out.ReadString('\n')
	if err != nil {
		b.err = b.failed(fmt.Errorf("git cat-file: blob %s: %w", id, noEOF(err)))
		return b.err
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != id.String() || f[1] != "blob" {
		b.err = b.failed(fmt.Errorf("git cat-file: blob %s: answered %q", id, strings.TrimSpace(line)))
		return b.err
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		b.err = b.failed(fmt.Errorf("git cat-file: blob %s: size %q", id, f[2]))
		return b.err
	}
	r := &io.LimitedReader{R: b.out, N: size}
	ferr := fn(r, size)
	if r.N > 0 {
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.err = b.failed(fmt.Errorf("git cat-file: blob %s: %w", id, noEOF(err)))
			return b.err
		}
		if r.N > 0 {
			b.err = b.failed(fmt.Errorf("git cat-file: blob %s: %w", id, io.ErrUnexpectedEOF))
			return b.err
		}
	}
	if c, err := b.out.ReadByte(); err != nil || c != '\n' {
		b.err = b.failed(fmt.Errorf("git cat-file: blob %s: no newline after its bytes", id))
		return b.err
	}
	return ferr
}

// failed ends git and adds what it said on stderr to err.
func (b *Batch) failed(err error) error {
	b.stdin.Close()
	b.cancel()
	b.cmd.Wait()
	b.cmd = nil
	if msg := strings.TrimSpace(b.stderr.String()); msg != "" {
		return fmt.Errorf("%w (git: %s)", err, msg)
	}
	return err
}

// Close ends git and releases the goroutine's thread. Blobs asked for
// and not read are dropped (git is killed rather than left to inflate
// them).
func (b *Batch) Close() error {
	defer b.unlock()
	if b.cmd == nil {
		return nil
	}
	b.stdin.Close()
	if b.pending > 0 {
		b.cancel()
		b.cmd.Wait()
		b.cmd = nil
		return nil
	}
	err := b.cmd.Wait()
	b.cmd = nil
	b.cancel()
	if err != nil {
		return fmt.Errorf("git cat-file: %v: %s", err, strings.TrimSpace(b.stderr.String()))
	}
	return nil
}

func (b *Batch) unlock() {
	if b.locked {
		runtime.UnlockOSThread()
		b.locked = false
	}
}
