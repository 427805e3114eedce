// Package mirror keeps one bare mirror per repository under ROOT/mirrors,
// shared safely by every gitfs process on the host. It is the only package
// that talks to remotes and runs git on a mirror: clone, fetch (coalesced
// within a process and across processes), rev resolution, merges without a
// work tree, and pinning packs for snapshots.
//
// Locks, in the order they may be taken:
//
//	mirror-NAME.lock          flock (lockPath): held while a mirror's refs or
//	                          directory change (add, fetch, repair, gc),
//	                          across processes.
//	mirror-NAME.objects.lock  flock (objectsLockPath): held while packs are
//	                          linked into a snapshot and while gc may delete
//	                          packs.
//	Set.refsMu                guards the kept ref lists and health checks
//	                          (refs.go); a leaf, held for one map access.
package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gitfs/gitfs/internal/gitdir"
	"github.com/gitfs/gitfs/internal/pack"
	"github.com/gitfs/gitfs/locks"
)

// ErrNotFound reports a repository name that has no mirror.
var ErrNotFound = errors.New("no such repository")

// ErrUnknownRev reports a revision that does not name a commit in the mirror.
var ErrUnknownRev = errors.New("unknown revision")

// ErrAmbiguousRev reports an abbreviated sha that more than one commit of
// the mirror starts with.
var ErrAmbiguousRev = errors.New("ambiguous revision")

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// ValidateName checks a repository name: letters, digits, '.', '_' and '-',
// not starting with '.', so it is always one safe path element.
func ValidateName(name string) error {
	if !validName.MatchString(name) || strings.HasSuffix(name, ".git") || len(name) > 100 {
		return fmt.Errorf("invalid repository name %q: use letters, digits, '.', '_' and '-', not starting with '.' and not ending in .git", name)
	}
	return nil
}

// Set is the collection of mirrors under one root.
type Set struct {
	dir      string // ROOT/mirrors
	lockDir  string // ROOT/locks
	log      *slog.Logger
	fetching singleflight.Group // coalesces Fetch calls in this process, by name
	opening  singleflight.Group // coalesces health checks and repairs, by name

	// onFetch, if set, is told of every fetch this process ran (not of
	// those it waited for): the daemon's metrics.
	onFetch func(took time.Duration, err error)
	// progress, if set, gets git's progress output of clones and fetches
	// (the CLI on a terminal; never the daemon).
	progress io.Writer

	// refsMu guards refLists, the last RefList of each mirror (refs.go),
	// and healthy, the state each mirror last passed checkHealth's refs
	// check in: a leaf, held for one map access (the package's lock table).
	refsMu      sync.Mutex
	refLists    map[string]refList
	healthy     map[string]string
	refListings atomic.Int64 // RefList answers asked of git
}

// SetProgress makes clones and fetches show git's progress on w (nil:
// quiet). Call it before the set is used.
func (s *Set) SetProgress(w io.Writer) { s.progress = w }

// quietOr is git's --quiet, or --progress when the set shows progress.
func (s *Set) quietOr() string {
	if s.progress != nil {
		return "--progress"
	}
	return "--quiet"
}

// OnFetch sets a function told how long each fetch this process runs
// took and how it ended. Call it before the set is used.
func (s *Set) OnFetch(fn func(took time.Duration, err error)) { s.onFetch = fn }

// Open returns the set of mirrors under root, creating its directories.
func Open(root string, log *slog.Logger) (*Set, error) {
	s := &Set{
		dir:     filepath.Join(root, "mirrors"),
		lockDir: filepath.Join(root, "locks"),
		log:     log,
	}
	for _, d := range []string{s.dir, s.lockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("mirrors: %w", err)
		}
	}
	return s, nil
}

// Mirror is one bare mirror. Its methods are safe for concurrent use.
type Mirror struct {
	Name string
	Dir  string // ROOT/mirrors/NAME.git
	set  *Set
}

// Info describes a mirror for listings.
type Info struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	LastFetch time.Time `json:"last_fetch"`           // last successful fetch (or the clone)
	LastError string    `json:"last_error,omitempty"` // why the last fetch failed; "" if it did not
	Refs      []string  `json:"refs,omitempty"`       // ref kinds mirrored (repo add --refs); nil: every ref
}

// state is what the mirror's last fetch did; it is written under the
// mirror lock and read by processes that waited for that fetch.
type state struct {
	Gen       int64     `json:"gen"`
	LastFetch time.Time `json:"last_fetch"`
	Error     string    `json:"error,omitempty"`
}

const stateFile = "gitfs-state.json"

func (s *Set) mirrorDir(name string) string { return filepath.Join(s.dir, name+".git") }

// lockPath is the flock held while a mirror's refs or directory change
// (add, fetch, repair, gc).
func (s *Set) lockPath(name string) string {
	return filepath.Join(s.lockDir, "mirror-"+name+".lock")
}

// objectsLockPath is the flock held while packs are linked into a snapshot
// and while gc may delete packs, so gc never removes a pack mid-link.
// Order: lockPath before objectsLockPath.
func (s *Set) objectsLockPath(name string) string {
	return filepath.Join(s.lockDir, "mirror-"+name+".objects.lock")
}

// normalizeURL turns a local path into an absolute one, so the mirror can
// be re-cloned from it later whatever the current directory.
func normalizeURL(url string) (string, error) {
	if url == "" {
		return "", errors.New("empty URL")
	}
	if strings.Contains(url, "://") || isSCPLike(url) {
		return url, nil
	}
	abs, err := filepath.Abs(url)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("%s: no such path (and not a URL)", url)
	}
	return abs, nil
}

// isSCPLike reports "host:path" ssh syntax (a colon before any slash).
func isSCPLike(url string) bool {
	colon := strings.Index(url, ":")
	slash := strings.Index(url, "/")
	return colon > 0 && (slash < 0 || colon < slash)
}

// Add clones url as the mirror NAME, with every ref. Adding an existing
// name with the same URL succeeds and changes nothing, so concurrent adds
// all succeed.
func (s *Set) Add(ctx context.Context, name, url string) (*Mirror, error) {
	return s.AddRefs(ctx, name, url, nil)
}

// AddRefs is Add mirroring only the ref kinds given (refs/KIND/* each, as
// ParseRefs returns them; nil: every ref). Later fetches and re-clones
// keep to them.
func (s *Set) AddRefs(ctx context.Context, name, url string, refs []string) (*Mirror, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	url, err := normalizeURL(url)
	if err != nil {
		return nil, err
	}
	lock, err := locks.Exclusive(ctx, s.lockPath(name))
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	m := &Mirror{Name: name, Dir: s.mirrorDir(name), set: s}
	if _, err := os.Stat(m.Dir); err == nil {
		have, err := m.URL(ctx)
		if err != nil {
			return nil, fmt.Errorf("existing mirror %s is unreadable: %w", name, err)
		}
		if have != url {
			return nil, fmt.Errorf("repository %s already exists with URL %s (remove it or pick another name)", name, have)
		}
		if refs != nil {
			if kinds, err := m.RefKinds(ctx); err == nil && strings.Join(kinds, ",") != strings.Join(refs, ",") {
				return nil, fmt.Errorf("repository %s already exists, mirroring %s (remove it with 'gitfs repo rm %s' to choose again)", name, FormatRefs(kinds), name)
			}
		}
		return m, nil
	}
	tmp, err := s.cloneTemp(ctx, name, url, 1, refs)
	if err != nil {
		return nil, err
	}
	err = locks.Publish(tmp, m.Dir)
	if err != nil && !errors.Is(err, locks.ErrPublishedByOther) {
		return nil, err
	}
	return m, nil
}

// cloneTemp clones url into a unique temp dir beside the mirror NAME,
// configures and checks it, and returns the temp dir for the caller to
// publish (or remove). The caller holds the mirror lock. On error nothing is
// left behind.
func (s *Set) cloneTemp(ctx context.Context, name, url string, gen int64, refs []string) (_ string, err error) {
	target := s.mirrorDir(name)
	locks.CleanStale(target)
	tmp, err := locks.TempDir(target)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if refs == nil {
		args := []string{"-c", "transfer.fsckObjects=true", "clone", "--mirror", s.quietOr(), "--no-local", "--", url, tmp}
		if _, err := (gitCmd{args: args, progress: s.progress}).run(ctx); err != nil {
			return "", fmt.Errorf("clone %s: %w", url, err)
		}
	} else if err := s.cloneRefs(ctx, url, tmp, refs); err != nil {
		return "", fmt.Errorf("clone %s: %w", url, err)
	}
	for _, kv := range [][2]string{
		{"gc.auto", "0"},
		{"transfer.fsckObjects", "true"},
		{"fetch.unpackLimit", "1"},
		{"core.logAllRefUpdates", "false"},
	} {
		if _, err := (gitCmd{dir: tmp, args: []string{"config", kv[0], kv[1]}}).run(ctx); err != nil {
			return "", err
		}
	}
	m := &Mirror{Name: name, Dir: tmp, set: s}
	if err := m.checkHealth(ctx); err != nil {
		return "", fmt.Errorf("clone of %s is unusable: %w", url, err)
	}
	st := state{Gen: gen, LastFetch: time.Now().UTC()}
	if err := writeState(tmp, st); err != nil {
		return "", err
	}
	return tmp, nil
}

// Get returns the mirror NAME after checking that it is healthy. A broken
// mirror (no refs, a missing or truncated pack, corrupt packed-refs) is never
// served: it is moved aside and re-cloned from its URL. A healthy mirror is
// returned without taking any lock that a fetch or gc holds.
func (s *Set) Get(ctx context.Context, name string) (*Mirror, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	m := &Mirror{Name: name, Dir: s.mirrorDir(name), set: s}
	if _, err := os.Stat(m.Dir); err != nil {
		// A repair in another process swaps the directory briefly: wait for
		// whoever holds the lock before calling it unknown. No lock file
		// means no process ever added or repaired it: unknown for sure,
		// and nothing is created for a mistyped name.
		if _, lerr := os.Stat(s.lockPath(name)); lerr != nil {
			return nil, notFound(name)
		}
		lock, lerr := locks.Exclusive(ctx, s.lockPath(name))
		if lerr != nil {
			return nil, lerr
		}
		_, err = os.Stat(m.Dir)
		lock.Unlock()
		if err != nil {
			return nil, notFound(name)
		}
	}
	herr := m.checkHealth(ctx)
	for i := 0; herr != nil && i < 2 && ctx.Err() == nil; i++ {
		// A concurrent git gc or fetch can make a pack vanish between
		// listing and opening it: look again before calling it broken.
		time.Sleep(20 * time.Millisecond)
		herr = m.checkHealth(ctx)
	}
	if herr == nil {
		return m, nil
	}
	_, err, _ := s.opening.Do(name, func() (any, error) {
		lock, err := locks.Exclusive(ctx, s.lockPath(name))
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
		return nil, s.repairLocked(ctx, m)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func notFound(name string) error {
	return fmt.Errorf("repository %q: %w (add it with: gitfs repo add %s URL)", name, ErrNotFound, name)
}

// repairLocked re-checks the mirror under its lock and, if it is still
// broken, clones it again from its URL into a temp dir, moves the broken one
// aside and publishes the new one. If the clone fails, the broken mirror
// stays where it is (still never served) so that the next attempt can
// retry with its URL.
func (s *Set) repairLocked(ctx context.Context, m *Mirror) error {
	herr := m.checkHealth(ctx)
	if herr == nil {
		return nil // another process repaired it while we waited
	}
	if _, err := os.Stat(m.Dir); err != nil {
		return notFound(m.Name)
	}
	url, err := m.URL(ctx)
	if err != nil || url == "" {
		return fmt.Errorf("repository %s is broken (%v) and its URL is unreadable: remove %s and add it again", m.Name, herr, m.Dir)
	}
	refs, rerr := m.RefKinds(ctx)
	if rerr != nil {
		refs = nil // config unreadable: every ref, as a plain add
	}
	aside := fmt.Sprintf("%s.broken-%s", strings.TrimSuffix(m.Dir, ".git"), time.Now().UTC().Format(brokenTimeLayout))
	s.log.Warn("mirror is broken: cloning it again and moving the broken one aside", "repo", m.Name, "problem", herr.Error(), "moved_to", aside, "url", url)
	tmp, err := s.cloneTemp(ctx, m.Name, url, readState(m.Dir).Gen+1, refs)
	if err != nil {
		return fmt.Errorf("repository %s is broken (%v); re-clone from %s failed: %w", m.Name, herr, url, err)
	}
	if err := os.Rename(m.Dir, aside); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("repository %s: move broken mirror aside: %w", m.Name, err)
	}
	if err := locks.Publish(tmp, m.Dir); err != nil && !errors.Is(err, locks.ErrPublishedByOther) {
		return fmt.Errorf("repository %s: publish re-cloned mirror: %w", m.Name, err)
	}
	s.log.Warn("mirror re-cloned", "repo", m.Name, "broken_copy", aside)
	return nil
}

// checkHealth is the cheap test run every time a mirror is opened: every
// pack has its index and the pack's trailing checksum matches the one the
// index recorded (a truncated or swapped pack fails), and the refs parse and
// are not empty.
func (m *Mirror) checkHealth(ctx context.Context) error {
	packDir := filepath.Join(m.Dir, "objects", "pack")
	entries, err := os.ReadDir(packDir)
	if err != nil {
		return fmt.Errorf("objects: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".idx") || !strings.HasPrefix(name, "pack-") {
			continue
		}
		base := strings.TrimSuffix(name, ".idx")
		if err := pack.CheckTrailer(filepath.Join(packDir, base)); err != nil {
			if _, serr := os.Lstat(filepath.Join(packDir, name)); errors.Is(serr, os.ErrNotExist) {
				continue // removed by a concurrent repack since listed
			}
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "HEAD")); err != nil {
		return fmt.Errorf("not a git directory: %w", err)
	}
	// The refs' check is a git process on every Get (each ws create and
	// update); its answer holds while the ref files and the packs are as
	// they were when it passed.
	var key string
	if st, ok := refState(m.Dir); ok && m.set != nil {
		var b strings.Builder
		b.WriteString(st)
		for _, e := range entries {
			b.WriteString(e.Name())
			b.WriteByte('\n')
		}
		key = b.String()
		if m.set.wasHealthy(m.Name, key) {
			return nil
		}
	}
	// %(objecttype) makes git look every ref's object up (in the pack
	// indexes, inflating nothing): a ref naming a missing object fails.
	out, err := (gitCmd{dir: m.Dir, args: []string{"for-each-ref", "--format=%(objecttype)"}}).run(ctx)
	if err != nil {
		return fmt.Errorf("refs unreadable: %w", err)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return errors.New("mirror has no refs")
	}
	if key != "" {
		m.set.keepHealthy(m.Name, key)
	}
	return nil
}

// URL is the remote the mirror fetches from.
func (m *Mirror) URL(ctx context.Context) (string, error) {
	out, err := (gitCmd{args: []string{"config", "--file", filepath.Join(m.Dir, "config"), "remote.origin.url"}}).run(ctx)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// FetchResult says whether this call fetched or waited for a fetch already
// running (in this or another process) and took its result.
type FetchResult struct {
	Coalesced bool
}

// Fetch updates the mirror from its remote. Calls while a fetch of the same
// mirror runs, here or in another process, wait for it and return its result
// instead of fetching again. A failed fetch leaves the previous refs and
// objects as they were.
func (s *Set) Fetch(ctx context.Context, name string) (FetchResult, error) {
	m, err := s.Get(ctx, name)
	if err != nil {
		return FetchResult{}, err
	}
	v, err, shared := s.fetching.Do(name, func() (any, error) {
		return m.fetch(ctx)
	})
	res, _ := v.(FetchResult)
	if shared {
		res.Coalesced = true
	}
	return res, err
}

func (m *Mirror) fetch(ctx context.Context) (FetchResult, error) {
	// A fetch that finishes after this point, in any process, fetched
	// everything that was on the remote when this call began: its result is
	// ours. Gen counts finished fetches.
	before := readState(m.Dir)
	lock, err := locks.Exclusive(ctx, m.set.lockPath(m.Name))
	if err != nil {
		return FetchResult{}, err
	}
	defer lock.Unlock()
	if after := readState(m.Dir); after.Gen != before.Gen {
		if after.Error != "" {
			return FetchResult{Coalesced: true}, fmt.Errorf("fetch %s: %s", m.Name, after.Error)
		}
		return FetchResult{Coalesced: true}, nil
	}

	if herr := m.checkHealth(ctx); herr != nil {
		// A fresh clone is a fetch.
		return FetchResult{}, m.set.repairLocked(ctx, m)
	}
	removeStaleGitLocks(m.Dir)
	st := readState(m.Dir)
	st.Gen++
	start := time.Now()
	_, ferr := (gitCmd{dir: m.Dir, args: []string{"fetch", "--prune", "--atomic", m.set.quietOr(), "origin"}, progress: m.set.progress}).run(ctx)
	if m.set.onFetch != nil && ctx.Err() == nil {
		m.set.onFetch(time.Since(start), ferr)
	}
	if ferr != nil {
		st.Error = ferr.Error()
	} else {
		st.Error = ""
		st.LastFetch = time.Now().UTC()
	}
	if ferr != nil {
		ferr = fmt.Errorf("fetch %s: %w", m.Name, ferr)
	}
	if ctx.Err() == nil {
		if err := writeState(m.Dir, st); err != nil {
			if ferr != nil {
				// Both fail together on a full disk: say why the fetch
				// failed too, on one line.
				err = fmt.Errorf("%w; %w", ferr, err)
			}
			return FetchResult{}, err
		}
	}
	if ferr != nil {
		return FetchResult{}, ferr
	}
	return FetchResult{}, nil
}

// removeStaleGitLocks deletes git's own *.lock files and temp packs that a
// killed git left behind. Only called under the mirror lock, when no git of
// ours can be running on this mirror.
func removeStaleGitLocks(dir string) {
	for _, pattern := range []string{"*.lock", "refs/*/*.lock", "refs/*/*/*.lock", "objects/pack/tmp_*", "objects/pack/.tmp-*"} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range matches {
			os.RemoveAll(p)
		}
	}
	// A fetch killed between indexing a pack and updating refs leaves the
	// pack's transient .keep, which would stop gc from ever repacking it.
	keeps, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "pack-*.keep"))
	for _, k := range keeps {
		if b, err := os.ReadFile(k); err == nil && (bytes.HasPrefix(b, []byte("fetch-pack ")) || bytes.HasPrefix(b, []byte("receive-pack "))) {
			os.Remove(k)
		}
	}
	filepath.WalkDir(filepath.Join(dir, "refs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".lock") {
			os.Remove(p)
		}
		return nil
	})
}

// CleanStale removes what killed processes left in ROOT/mirrors: clone
// temp dirs whose builder is dead (a live builder's are never touched).
// Broken mirrors moved aside are kept for inspection.
func (s *Set) CleanStale() {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return
	}
	done := make(map[string]bool)
	for _, e := range entries {
		target, _, ok := strings.Cut(e.Name(), locks.TempMarker)
		name, isMirror := strings.CutSuffix(target, ".git")
		if !ok || !isMirror || done[target] || ValidateName(name) != nil {
			continue
		}
		done[target] = true
		// Clones run under the mirror lock: skip a name being cloned (by a
		// process whose pid we may not see, in another pid namespace).
		lock, err := locks.TryExclusive(s.lockPath(name))
		if err != nil {
			continue
		}
		locks.CleanStale(filepath.Join(s.dir, target))
		lock.Unlock()
	}
}

func readState(dir string) state {
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func writeState(dir string, st state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write fetch state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("write fetch state: %w", err)
	}
	return nil
}

// List describes every mirror, sorted by name.
func (s *Set) List(ctx context.Context) ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("mirrors: %w", err)
	}
	var out []Info
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".git")
		if !ok || !e.IsDir() || ValidateName(name) != nil {
			continue
		}
		m := &Mirror{Name: name, Dir: s.mirrorDir(name), set: s}
		url, _ := m.URL(ctx)
		st := readState(m.Dir)
		refs, _ := m.RefKinds(ctx)
		out = append(out, Info{Name: name, URL: url, LastFetch: st.LastFetch, LastError: st.Error, Refs: refs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// IsFullSHA reports whether rev is a full 40-hex commit id.
func IsFullSHA(rev string) bool { return gitdir.IsID(rev) }

// Resolve turns a branch, tag, HEAD, or full or abbreviated sha into a
// commit id. It takes no lock: git reads refs atomically while a fetch
// updates them.
func (m *Mirror) Resolve(ctx context.Context, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, "\x00\n") {
		return "", fmt.Errorf("%s: %q: %w", m.Name, rev, ErrUnknownRev)
	}
	candidates := []string{rev}
	if !strings.HasPrefix(rev, "refs/") && rev != "HEAD" && !IsFullSHA(rev) {
		// Prefer a branch, then a tag, over git's own DWIM order so that
		// "main" means refs/heads/main even if a tag is called main too.
		// A full id is an object id first, as git takes it (it only warns
		// of a ref of that name).
		candidates = []string{"refs/heads/" + rev, "refs/tags/" + rev, rev}
	}
	// A branch or tag the kept ref list knows needs no git (one process
	// on every ws create and update by name); the list is looked up once.
	var list *refList
	for _, c := range candidates {
		if strings.HasPrefix(c, "refs/heads/") || strings.HasPrefix(c, "refs/tags/") {
			if list == nil {
				if l, kept, err := m.keptRefs(ctx); err == nil && kept {
					list = &l
				}
			}
			if list != nil {
				if commit, found := list.commit(c); found {
					if commit != "" {
						return commit, nil
					}
					continue // no such ref
				}
			}
		}
		out, err := (gitCmd{dir: m.Dir, args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", c + "^{commit}"}}).run(ctx)
		if err == nil {
			sha := strings.TrimSpace(string(out))
			if IsFullSHA(sha) {
				return sha, nil
			}
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	if commits := m.commitsWithPrefix(ctx, rev); len(commits) > 1 {
		shown := commits[:min(len(commits), 4)]
		for i, c := range shown {
			shown[i] = c[:12]
		}
		return "", fmt.Errorf("%s: %q: %w: %d commits start with it (%s): give more digits", m.Name, rev, ErrAmbiguousRev, len(commits), strings.Join(shown, ", "))
	}
	return "", fmt.Errorf("%s: %q: %w", m.Name, rev, ErrUnknownRev)
}

// isShortSHA: 4 to 39 hex digits, as git abbreviates. A loop, not a
// regexp: the repetition compiles to 39 copies at every process start.
func isShortSHA(s string) bool {
	if len(s) < 4 || len(s) > 39 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// commitsWithPrefix lists the commits whose id starts with prefix (an
// abbreviated sha), to tell an ambiguous one from an unknown one: git's
// rev-parse --verify says only that it failed.
func (m *Mirror) commitsWithPrefix(ctx context.Context, prefix string) []string {
	if !isShortSHA(prefix) {
		return nil
	}
	out, err := (gitCmd{dir: m.Dir, args: []string{"rev-parse", "--disambiguate=" + strings.ToLower(prefix)}}).run(ctx)
	if err != nil || len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	types, err := (gitCmd{dir: m.Dir, args: []string{"cat-file", "--batch-check=%(objecttype) %(objectname)"}, stdin: out}).run(ctx)
	if err != nil {
		return nil
	}
	var commits []string
	for _, l := range strings.Split(string(types), "\n") {
		if typ, id, ok := strings.Cut(l, " "); ok && typ == "commit" && IsFullSHA(id) {
			commits = append(commits, id)
		}
	}
	sort.Strings(commits)
	return commits
}

// Refs lists the mirror's branches or tags ("heads" or "tags") by short name.
func (m *Mirror) Refs(ctx context.Context, kind string) ([]string, error) {
	out, err := (gitCmd{dir: m.Dir, args: []string{"for-each-ref", "--format=%(refname)", "refs/" + kind + "/"}}).run(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: list %s: %w", m.Name, kind, err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if n, ok := strings.CutPrefix(l, "refs/"+kind+"/"); ok {
			names = append(names, n)
		}
	}
	return names, nil
}
