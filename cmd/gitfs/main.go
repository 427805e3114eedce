// Command gitfs mounts copy-on-write workspaces backed by immutable
// per-commit snapshots of shared git mirrors. See `gitfs --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
	"github.com/gitfs/gitfs/internal/version"
	"github.com/gitfs/gitfs/mirror"
	"github.com/gitfs/gitfs/snapshot"
)

// command is one CLI verb. Its help text teaches: what it does, then an example.
type command struct {
	name    string // "repo add"
	args    string // "NAME URL"
	summary string
	help    string
	minArgs int
	maxArgs int // -1: any
	flags   func(fs *pflag.FlagSet)
	run     func(ctx context.Context, e *env, fs *pflag.FlagSet, args []string) error
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

// env is what every command gets: the root, logger and lazily opened stores.
type env struct {
	root   string
	log    *slog.Logger
	quiet  bool // --quiet: no progress
	stdout io.Writer
	stderr io.Writer

	mirrors   *mirror.Set
	snapshots *snapshot.Store
}

func (e *env) openMirrors() (*mirror.Set, error) {
	if e.mirrors != nil {
		return e.mirrors, nil
	}
	if err := mirror.CheckGit(); err != nil {
		return nil, err
	}
	if err := prepareRoot(e.root); err != nil {
		return nil, err
	}
	m, err := mirror.Open(e.root, e.log)
	if err != nil {
		return nil, err
	}
	e.mirrors = m
	return m, nil
}

func (e *env) openSnapshots() (*snapshot.Store, error) {
	if e.snapshots != nil {
		return e.snapshots, nil
	}
	m, err := e.openMirrors()
	if err != nil {
		return nil, err
	}
	s, err := snapshot.NewStore(e.root, m, e.log, snapshot.Options{})
	if err != nil {
		return nil, err
	}
	e.snapshots = s
	return s, nil
}

// prepareRoot creates the root or explains why it cannot be used.
func prepareRoot(root string) error {
	if err := daemon.PrepareRoot(root); err != nil {
		return err
	}
	probe, err := os.CreateTemp(root, ".probe-*")
	if err != nil {
		return fmt.Errorf("root %s is not writable: %w (choose another with --root or GITFS_ROOT)", root, unwrapPath(err))
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func defaultRoot() string {
	if r := os.Getenv("GITFS_ROOT"); r != "" {
		return r
	}
	if c := os.Getenv("XDG_CACHE_HOME"); c != "" {
		return filepath.Join(c, "gitfs")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "gitfs")
	}
	return filepath.Join(os.TempDir(), "gitfs")
}

type globalFlags struct {
	root      string
	logLevel  string
	logFormat string
	quiet     bool
}

func addGlobalFlags(fs *pflag.FlagSet, g *globalFlags) {
	fs.StringVar(&g.root, "root", defaultRoot(), "directory holding mirrors, snapshots and workspaces (env GITFS_ROOT)")
	fs.StringVar(&g.logLevel, "log-level", "warn", "log detail on stderr: debug, info, warn or error")
	fs.StringVar(&g.logFormat, "log-format", "text", "log lines on stderr as text (key=value) or json (one object a line)")
	fs.BoolVarP(&g.quiet, "quiet", "q", false, "no progress on stderr, even on a terminal")
}

// newLogger is the logger of --log-level and --log-format.
func newLogger(w io.Writer, g *globalFlags) (*slog.Logger, error) {
	level := slog.LevelWarn
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", g.logFormat)
}

// usageError is a bad invocation: it prints one line and where help is,
// and exits 2.
type usageError struct{ msg string }

// badUsage reports a bad invocation: what is wrong, on one line, and the
// command that explains the right one (not the whole usage page, which
// would bury the error).
func badUsage(w io.Writer, who, msg, helpCmd string) int {
	fmt.Fprintf(w, "%s: %s\nRun '%s --help' for usage.\n", who, msg, helpCmd)
	return 2
}

// groups are the first words of two-word commands, with what they do.
var groups = map[string]string{
	"repo": "bare mirrors of repositories, shared by every gitfs process on the host (no daemon needed)",
	"ws":   "copy-on-write workspaces, served by the daemon (gitfs serve) over its control socket",
}

// groupCommands lists the second words of group's commands.
func groupCommands(group string) []string {
	var out []string
	for _, c := range commands {
		if g, sub, ok := strings.Cut(c.name, " "); ok && g == group {
			out = append(out, sub)
		}
	}
	sort.Strings(out)
	return out
}

func printGroupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: gitfs %s COMMAND [ARGS] [FLAGS]\n\n%s\n\nCommands:\n", group, groups[group])
	sorted := append([]*command(nil), commands...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  %-40s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'gitfs %s COMMAND --help' for a command's details and examples.\n", group)
}

func (u usageError) Error() string { return u.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	var g globalFlags
	top := pflag.NewFlagSet("gitfs", pflag.ContinueOnError)
	top.SetInterspersed(false)
	top.SetOutput(io.Discard)
	addGlobalFlags(top, &g)
	help := top.BoolP("help", "h", false, "show help")
	showVersion := top.Bool("version", false, "print gitfs's version and exit")
	if err := top.Parse(argv); err != nil {
		return badUsage(stderr, "gitfs", err.Error(), "gitfs")
	}
	rest := top.Args()
	if *showVersion {
		fmt.Fprintln(stdout, version.Long())
		return 0
	}
	if *help || len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 && rest[0] == "help" {
			if c := findCommand(rest[1:]); c != nil {
				printCommandUsage(stdout, c, newCommandFlags(c, &g))
				return 0
			}
			if groups[rest[1]] != "" && len(rest) == 2 {
				printGroupUsage(stdout, rest[1])
				return 0
			}
		}
		printTopUsage(stdout, top)
		if len(rest) == 0 && !*help {
			return 2
		}
		return 0
	}
	c := findCommand(rest)
	if c == nil {
		if g := rest[0]; groups[g] != "" {
			switch {
			case len(rest) > 1 && (rest[1] == "--help" || rest[1] == "-h" || rest[1] == "help"):
				printGroupUsage(stdout, g)
				return 0
			case len(rest) == 1 || strings.HasPrefix(rest[1], "-"):
				return badUsage(stderr, "gitfs "+g, "which one? "+strings.Join(groupCommands(g), ", "), "gitfs "+g)
			}
			return badUsage(stderr, "gitfs", fmt.Sprintf("unknown command %q", unknownCommand(rest)), "gitfs "+g)
		}
		return badUsage(stderr, "gitfs", fmt.Sprintf("unknown command %q", unknownCommand(rest)), "gitfs")
	}
	words := len(strings.Fields(c.name))
	fs := newCommandFlags(c, &g)
	chelp := fs.BoolP("help", "h", false, "show help for this command")
	if err := fs.Parse(rest[words:]); err != nil {
		return badUsage(stderr, "gitfs "+c.name, err.Error(), "gitfs "+c.name)
	}
	if *chelp {
		printCommandUsage(stdout, c, fs)
		return 0
	}
	args := fs.Args()
	if len(args) < c.minArgs || (c.maxArgs >= 0 && len(args) > c.maxArgs) {
		return badUsage(stderr, "gitfs "+c.name, fmt.Sprintf("expected arguments %s, got %d", c.args, len(args)), "gitfs "+c.name)
	}
	logger, err := newLogger(stderr, &g)
	if err != nil {
		fmt.Fprintf(stderr, "gitfs: %v\n", err)
		return 2
	}
	root, err := filepath.Abs(g.root)
	if err != nil {
		fmt.Fprintf(stderr, "gitfs: --root: %v\n", err)
		return 2
	}
	e := &env{
		root:   root,
		log:    logger,
		quiet:  g.quiet,
		stdout: stdout,
		stderr: stderr,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, e, fs, args); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return badUsage(stderr, "gitfs "+c.name, ue.msg, "gitfs "+c.name)
		}
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "gitfs %s: interrupted\n", c.name)
			return 130
		}
		fmt.Fprintf(stderr, "gitfs %s: %s\n", c.name, oneLine(err))
		var ee exitStatus
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitStatus lets an error choose the exit status.
type exitStatus struct {
	error
	code int
}

func (e exitStatus) Unwrap() error { return e.error }

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func newCommandFlags(c *command, g *globalFlags) *pflag.FlagSet {
	fs := pflag.NewFlagSet("gitfs "+c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	if c.flags != nil {
		c.flags(fs)
	}
	// Global flags are accepted after the command too.
	// Registering them resets g to the defaults, so keep what was given
	// before the command and put it back.
	given := *g
	gs := pflag.NewFlagSet("", pflag.ContinueOnError)
	addGlobalFlags(gs, g)
	*g = given
	gs.VisitAll(func(f *pflag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.AddFlag(f)
		}
	})
	return fs
}

func findCommand(words []string) *command {
	var best *command
	for _, c := range commands {
		cw := strings.Fields(c.name)
		if len(cw) <= len(words) && strings.Join(words[:len(cw)], " ") == c.name {
			if best == nil || len(cw) > len(strings.Fields(best.name)) {
				best = c
			}
		}
	}
	return best
}

// unknownCommand names what words meant as a command that findCommand
// does not know: two words after a group's first ("ws nope"), else one, so
// that neither an argument nor a flag is named as part of it.
func unknownCommand(words []string) string {
	for _, c := range commands {
		if len(words) > 1 && !strings.HasPrefix(words[1], "-") && strings.HasPrefix(c.name, words[0]+" ") {
			return words[0] + " " + words[1]
		}
	}
	return words[0]
}

func printTopUsage(w io.Writer, top *pflag.FlagSet) {
	fmt.Fprint(w, `gitfs: copy-on-write git workspaces over FUSE, backed by immutable per-commit
snapshots of shared bare mirrors.

Usage: gitfs [--root DIR] COMMAND [ARGS] [FLAGS]

Commands:
`)
	sorted := append([]*command(nil), commands...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-40s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s\nRun 'gitfs COMMAND --help' for a command's details and examples.\n", top.FlagUsages())
}

func printCommandUsage(w io.Writer, c *command, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "Usage: gitfs %s [FLAGS]\n\n%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	if c.help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
}
