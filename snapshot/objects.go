package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	gitcache "github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
)

// streamThreshold is the size above which go-git streams an object from
// its pack instead of inflating it into memory.
const streamThreshold = 1 << 20

// packSet reads objects from a fixed set of pack files. go-git's Packfile
// is not safe for concurrent use (it seeks a shared scanner), so each pack
// keeps a free list of Packfile instances, each with its own descriptor; the
// index and the delta-base cache are shared (both are goroutine-safe).
type packSet struct {
	packs []*pack
	dir   string // the pack directory

	// The checkout read path (checkout_stream.go), opened on first use.
	fastOnce sync.Once
	fast     *fastPacks
	fastErr  error
}

type pack struct {
	name       string
	fs         billy.Filesystem
	idx        *idxfile.MemoryIndex
	deltaCache gitcache.Object
	// free holds idle Packfile instances; tokens bounds how many exist.
	free   chan *packfile.Packfile
	tokens chan struct{}
}

func openPackSet(packDir string, names []string) (*packSet, error) {
	fs := osfs.New(packDir, osfs.WithBoundOS())
	maxOpen := 2 * runtime.GOMAXPROCS(0)
	if maxOpen < 4 {
		maxOpen = 4
	}
	ps := &packSet{dir: packDir}
	for _, name := range names {
		idx, err := readIndex(filepath.Join(packDir, name+".idx"))
		if err != nil {
			ps.close()
			return nil, err
		}
		p := &pack{
			name:       name,
			fs:         fs,
			idx:        idx,
			deltaCache: gitcache.NewObjectLRU(16 * gitcache.MiByte),
			free:       make(chan *packfile.Packfile, maxOpen),
			tokens:     make(chan struct{}, maxOpen),
		}
		ps.packs = append(ps.packs, p)
	}
	return ps, nil
}

func readIndex(path string) (*idxfile.MemoryIndex, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pack index: %w", err)
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
		return nil, fmt.Errorf("pack index %s: %w", filepath.Base(path), err)
	}
	return idx, nil
}

func (ps *packSet) close() {
	if ps.fast != nil {
		ps.fast.close()
	}
	for _, p := range ps.packs {
		for {
			select {
			case pf := <-p.free:
				pf.Close()
				continue
			default:
			}
			break
		}
	}
}

// find returns the pack holding id and its offset there.
func (ps *packSet) find(id plumbing.Hash) (*pack, int64, bool) {
	for _, p := range ps.packs {
		if off, err := p.idx.FindOffset(id); err == nil {
			return p, off, true
		}
	}
	return nil, 0, false
}

func (ps *packSet) has(id plumbing.Hash) bool {
	_, _, ok := ps.find(id)
	return ok
}

func (p *pack) acquire() (*packfile.Packfile, error) {
	select {
	case pf := <-p.free:
		return pf, nil
	default:
	}
	select {
	case pf := <-p.free:
		return pf, nil
	case p.tokens <- struct{}{}:
		f, err := p.fs.Open(p.name + ".pack")
		if err != nil {
			<-p.tokens
			return nil, fmt.Errorf("open pack %s: %w", p.name, err)
		}
		return packfile.NewPackfileWithCache(p.idx, p.fs, f, p.deltaCache, streamThreshold), nil
	}
}

func (p *pack) release(pf *packfile.Packfile) { p.free <- pf }

// discard drops an instance whose state is unknown after an error.
func (p *pack) discard(pf *packfile.Packfile) {
	pf.Close()
	<-p.tokens
}

// object returns the object id; its content is read by the returned
// object's Reader, which for large objects streams from its own descriptor.
func (ps *packSet) object(id plumbing.Hash) (plumbing.EncodedObject, error) {
	p, _, ok := ps.find(id)
	if !ok {
		return nil, fmt.Errorf("object %s: %w", id, plumbing.ErrObjectNotFound)
	}
	pf, err := p.acquire()
	if err != nil {
		return nil, err
	}
	obj, err := pf.Get(id)
	if err != nil {
		p.discard(pf)
		return nil, fmt.Errorf("object %s in %s: %w", id, p.name, err)
	}
	p.release(pf)
	return obj, nil
}

// size reads an object's size from its pack header without inflating it.
func (ps *packSet) size(id plumbing.Hash) (int64, error) {
	p, off, ok := ps.find(id)
	if !ok {
		return 0, fmt.Errorf("object %s: %w", id, plumbing.ErrObjectNotFound)
	}
	pf, err := p.acquire()
	if err != nil {
		return 0, err
	}
	n, err := pf.GetSizeByOffset(off)
	if err != nil {
		p.discard(pf)
		return 0, fmt.Errorf("size of %s in %s: %w", id, p.name, err)
	}
	p.release(pf)
	return n, nil
}

// packNames lists the pack base names ("pack-<sha>") in dir.
func packNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ".pack"); ok && strings.HasPrefix(base, "pack-") {
			names = append(names, base)
		}
	}
	return names, nil
}
