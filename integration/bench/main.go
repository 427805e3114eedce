//go:build linux

// Command bench runs gitfs's benchmark suite: every scenario of issue 13's
// table, each run alternately with its git counterpart in one run, on
// generated trees (--files) or on a bare repository given by path
// (--repo), and prints a Markdown table: median, min and max of each side,
// the ratio of the medians (gitfs / git; for throughput, git / gitfs, so
// that lower is better everywhere), and the daemon's peak RSS during the
// scenario.
//
//	go run ./integration/bench --files 1000,20000 --runs 3
//	go run ./integration/bench --repo /srv/git/linux.git --runs 5 --json
//	go run ./integration/bench --serve-flags=--open-handles --only writes
//
// It builds gitfs, runs the daemon as the current user (root mounts
// directly; others need fusermount3), and works under --workdir (default
// a new directory in $TMPDIR), which it removes at the end unless --keep.
// Cold-cache steps drop the page cache when run as root. Numbers drift on
// a shared or virtual machine: compare ratios within one run.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	files := flag.String("files", "1000,20000", "sizes of the generated trees, comma-separated")
	repo := flag.String("repo", "", "a bare repository to use instead of generated trees (its HEAD and first parents)")
	runs := flag.Int("runs", 3, "runs of each side of each scenario")
	asJSON := flag.Bool("json", false, "print the results as JSON instead of a Markdown table")
	work := flag.String("workdir", "", "where to work (default: a new directory in $TMPDIR)")
	keep := flag.Bool("keep", false, "keep the work directory")
	only := flag.String("only", "", "run only the scenarios whose name contains this")
	serveFlags := flag.String("serve-flags", "", "more flags for the daemon, space-separated (e.g. --open-handles); the tree's label names them")
	flag.Parse()
	if *runs < 1 {
		fail("--runs must be at least 1")
	}
	dir := *work
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "gitfs-bench-"); err != nil {
			fail(err.Error())
		}
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	bin, err := buildGitfs(dir)
	if err != nil {
		fail(err.Error())
	}
	var sizes []int
	if *repo == "" {
		for _, s := range strings.Split(*files, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 100 {
				fail(fmt.Sprintf("--files: %q: want sizes of at least 100", s))
			}
			sizes = append(sizes, n)
		}
	} else {
		sizes = []int{0}
	}
	var all []result
	for _, n := range sizes {
		b, err := newBench(bin, filepath.Join(dir, fmt.Sprintf("n%d", n)), n, *repo, *runs, strings.Fields(*serveFlags))
		if err != nil {
			fail(err.Error())
		}
		logf("%s: %d files, %d runs a side", b.label, b.files, *runs)
		all = append(all, b.runAll(*only)...)
		b.close()
		running = nil
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(all)
		return
	}
	printTable(os.Stdout, all)
}

// buildGitfs builds the gitfs binary of this module into dir.
func buildGitfs(dir string) (string, error) {
	bin := filepath.Join(dir, "gitfs")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gitfs/gitfs/cmd/gitfs")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building gitfs: %w", err)
	}
	return bin, nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// running is the bench whose daemon is up, stopped by fail so that a
// failed run leaves no mount behind.
var running *bench

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench:", msg)
	if running != nil {
		running.close()
	}
	os.Exit(1)
}
