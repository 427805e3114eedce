//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// A scenario measures gitfs against its git counterpart, runs times each,
// alternating which side goes first.
type scenario struct {
	name, git, target string
	run               func(b *bench) []result
}

func (b *bench) scenarios() []scenario {
	return []scenario{
		{"warm full read", "same tar in a native checkout", "≤ 1.1", (*bench).warmRead},
		{"4 KiB writes to a new file", "native (100 MiB; ratio of times = inverse of throughputs)", "≤ 2.0", (*bench).smallWrites},
		{"ws update to the next commit", "git checkout of it", "≤ 0.1", (*bench).update},
		{"new-commit job", "", "", (*bench).newCommitJob},
		{"first checkout of a new commit", "git checkout at its best checkout.workers", "≤ 0.6", (*bench).firstCheckout},
		{"first checkout of the next commit, the store holding the one before", "git checkout at its best checkout.workers", "≤ 0.6", (*bench).nextCheckout},
		{"later checkouts of a commit", "same", "≤ 0.4", (*bench).laterCheckout},
		{"8 jobs at once", "8 clones + checkouts + reads", "≤ 0.3", (*bench).eightJobs},
		{"diff -r of two tags' browse paths", "git diff", "≤ 3", (*bench).diffTags},
		{"disk for 10 successive commits, 1% changed each", "one tree + the mirror", "≤ 1.2", (*bench).disk},
	}
}

func (b *bench) runAll(only string) []result {
	var out []result
	for _, s := range b.scenarios() {
		if only != "" && !strings.Contains(s.name, only) {
			continue
		}
		logf("%s: %s", b.label, s.name)
		b.resetPeak()
		rs := s.run(b)
		for i := range rs {
			r := &rs[i]
			r.Tree, r.Files = b.label, b.files
			if r.Scenario == "" {
				r.Scenario = s.name
			}
			if r.GitSide == "" {
				r.GitSide = s.git
			}
			if r.Target == "" {
				r.Target = s.target
			}
			r.RSSMiB = b.peakRSS()
			r.finish()
			logf("  %s: gitfs %.3f vs %.3f: %.2f %s", r.Scenario, r.Gitfs.Median, r.Git.Median, r.Ratio, r.Note)
		}
		out = append(out, rs...)
	}
	return out
}

// alternate runs gitfs(i) and git(i) runs times, the first side
// alternating, and returns their samples.
func (b *bench) alternate(gitfs, git func(i int) float64) (g, n []float64) {
	for i := 0; i < b.runs; i++ {
		if i%2 == 0 {
			g = append(g, gitfs(i))
			n = append(n, git(i))
		} else {
			n = append(n, git(i))
			g = append(g, gitfs(i))
		}
	}
	return g, n
}

// warmRead: tar and find over a workspace whose tree the kernel and the
// blob store already hold, against the same over a native checkout; also
// what one warm tar asks of the daemon.
func (b *bench) warmRead() []result {
	ws, err := b.wsCreate("warm", b.chain[0])
	if err != nil {
		fail(err.Error())
	}
	b.awaitFill(b.distinctBlobs(b.chain[0]))
	for i := 0; i < 2; i++ { // cold, then warm, before timing
		timed(ws, readTree)
		timed(b.native, readTree)
	}
	before := b.requests()
	timed(ws, readTree)
	reqs := diffRequests(before, b.requests())
	g, n := b.alternate(func(int) float64 { return timed(ws, readTree) }, func(int) float64 { return timed(b.native, readTree) })
	read := result{Gitfs: summarize(g), Git: summarize(n), Note: "FUSE requests of a warm tar: " + formatRequests(reqs)}
	find := "find . -type f | wc -l >/dev/null"
	timed(ws, find)
	g, n = b.alternate(func(int) float64 { return timed(ws, find) }, func(int) float64 { return timed(b.native, find) })
	walk := result{Scenario: "warm metadata walk (find . -type f)", GitSide: "native", Target: "≤ 1.2", Gitfs: summarize(g), Git: summarize(n)}
	return []result{read, walk}
}

// smallWrites: 100 MiB in 4 KiB writes to a new file.
func (b *bench) smallWrites() []result {
	ws := filepath.Join(b.mnt, "warm")
	if _, err := os.Stat(ws); err != nil { // --only: no warm read before
		if ws, err = b.wsCreate("writes", b.chain[0]); err != nil {
			fail(err.Error())
		}
	}
	dd := func(dir string) float64 {
		os.Remove(filepath.Join(dir, "written"))
		return timed(dir, "dd if=/dev/zero of=written bs=4k count=25600 2>/dev/null")
	}
	before := b.requests()
	g, n := b.alternate(func(int) float64 { return dd(ws) }, func(int) float64 { return dd(b.native) })
	reqs := diffRequests(before, b.requests())
	os.Remove(filepath.Join(ws, "written"))
	os.Remove(filepath.Join(b.native, "written"))
	return []result{{Gitfs: summarize(g), Git: summarize(n), Note: fmt.Sprintf("%.0f vs %.0f MiB/s; requests: %s",
		100/median(g), 100/median(n), formatRequests(reqs))}}
}

// update: ws update from chain[0] to chain[1] (back again untimed),
// against git checkout in a clone.
func (b *bench) update() []result {
	ws, err := b.wsCreate("upd", b.chain[0])
	if err != nil {
		fail(err.Error())
	}
	timed(ws, readTree)
	clone := filepath.Join(b.dir, "upd-clone")
	if err := sh(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", b.mirror, clone, clone, b.chain[0])); err != nil {
		fail(err.Error())
	}
	timed(clone, readTree)
	gitfs := func(int) float64 {
		t := timed(b.dir, fmt.Sprintf("%s --root %s -q ws update upd --rev %s", b.bin, b.root, b.chain[1]))
		timed(b.dir, fmt.Sprintf("%s --root %s -q ws update upd --rev %s", b.bin, b.root, b.chain[0]))
		return t
	}
	git := func(int) float64 {
		t := timed(clone, "git checkout -q "+b.chain[1])
		timed(clone, "git checkout -q "+b.chain[0])
		return t
	}
	g, n := b.alternate(gitfs, git)
	return []result{{Gitfs: summarize(g), Git: summarize(n)}}
}

// newCommitJob is the CI flow: the previous job read commit chain[i-1]
// (its workspace read, its blobs stored); the next job creates a workspace
// at chain[i] and reads it all. Against a persistent clone (git checkout
// chain[i] from chain[i-1], then the read) and a fresh clone --shared +
// checkout + read.
func (b *bench) newCommitJob() []result {
	persistent := filepath.Join(b.dir, "job-persistent")
	if err := sh(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s", b.mirror, persistent)); err != nil {
		fail(err.Error())
	}
	// The slot: one workspace a CI agent keeps and moves to each job's
	// commit with ws update --reset (the persistent clone's counterpart).
	slot, err := b.wsCreate("slot", b.chain[0])
	if err != nil {
		fail(err.Error())
	}
	timed(slot, readTree)
	var g, p, f, r []float64
	for i := 1; i <= b.runs; i++ {
		prev := b.nextName("job")
		ws, err := b.wsCreate(prev, b.chain[i-1])
		if err != nil {
			fail(err.Error())
		}
		timed(ws, readTree)
		b.awaitFill(b.distinctBlobs(b.chain[i-1]))
		timed(persistent, "git checkout -q -f "+b.chain[i-1])
		timed(persistent, readTree)
		name := b.nextName("job")
		fresh := filepath.Join(b.dir, b.nextName("job-fresh-"))
		sides := []func(){
			func() {
				g = append(g, timed(b.dir, fmt.Sprintf("ws=$(%s --root %s -q ws create %s --repo demo --rev %s) && cd \"$ws\" && %s",
					b.bin, b.root, name, b.chain[i], readTree)))
			},
			func() { p = append(p, timed(persistent, "git checkout -q "+b.chain[i]+" && "+readTree)) },
			func() {
				r = append(r, timed(slot, fmt.Sprintf("%s --root %s -q ws update slot --reset --rev %s >/dev/null && %s",
					b.bin, b.root, b.chain[i], readTree)))
			},
			func() {
				f = append(f, timed(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && cd %s && git checkout -q %s && %s",
					b.mirror, fresh, fresh, b.chain[i], readTree)))
			},
		}
		for j := range sides {
			sides[(i+j)%len(sides)]()
		}
	}
	return []result{
		{Scenario: "new-commit job: ws create + read, previous job at the commit before (1% changed)",
			GitSide: "persistent clone: git checkout + read", Target: "≤ 1.0", Gitfs: summarize(g), Git: summarize(p)},
		{Scenario: "new-commit job (same runs)", GitSide: "fresh clone --shared + checkout + read", Target: "≤ 0.3",
			Gitfs: summarize(g), Git: summarize(f)},
		{Scenario: "new-commit job reusing a slot's workspace: ws update --reset + read", GitSide: "persistent clone: git checkout + read",
			Target: "≤ 1.0", Gitfs: summarize(r), Git: summarize(p)},
	}
}

// bestWorkers is git checkout's fastest checkout.workers here (1 or 2:
// tried once each), the counterpart of gitfs checkout.
func (b *bench) bestWorkers() int {
	best, bestT := 1, 0.0
	for _, w := range []int{1, 2} {
		settle()
		d := filepath.Join(b.dir, b.nextName("workers-"))
		t := timed(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s -c checkout.workers=%d checkout -q %s",
			b.mirror, d, d, w, b.chain[0]))
		if bestT == 0 || t < bestT {
			best, bestT = w, t
		}
	}
	return best
}

// gitCheckout times git checkout of commit into a new --shared clone.
func (b *bench) gitCheckout(workers int, commit string) float64 {
	d := filepath.Join(b.dir, b.nextName("git-co-"))
	if err := sh(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s", b.mirror, d)); err != nil {
		fail(err.Error())
	}
	settle()
	return timed(d, fmt.Sprintf("git -c checkout.workers=%d checkout -q %s", workers, commit))
}

// gitfsCheckout times gitfs checkout of commit into a new directory.
func (b *bench) gitfsCheckout(commit string) float64 {
	settle()
	return timed(b.dir, fmt.Sprintf("%s --root %s -q checkout demo %s %s", b.bin, b.root, commit, filepath.Join(b.dir, b.nextName("gitfs-co-"))))
}

// settle writes back what earlier runs left dirty, so that a checkout's
// clock holds its own work only (neither side syncs what it writes:
// the kernel writes it back later, as it does for any checkout).
func settle() { exec.Command("sync").Run() }

// firstCheckout: gitfs checkout of a commit none of whose blobs are
// stored (an empty store before each run; the store as it was is put
// back after).
func (b *bench) firstCheckout() []result {
	w := b.bestWorkers()
	kept := filepath.Join(b.dir, b.nextName("blobs-kept-"))
	if err := os.MkdirAll(filepath.Join(b.root, "blobs", "tmp"), 0o700); err != nil {
		fail(err.Error())
	}
	if err := os.Rename(filepath.Join(b.root, "blobs"), kept); err != nil {
		fail(err.Error())
	}
	if err := os.MkdirAll(filepath.Join(b.root, "blobs", "tmp"), 0o700); err != nil {
		fail(err.Error())
	}
	g, n := b.alternate(func(int) float64 {
		if err := b.emptyStore(); err != nil {
			fail(err.Error())
		}
		return b.gitfsCheckout(b.chain[0])
	}, func(int) float64 { return b.gitCheckout(w, b.chain[0]) })
	if err := b.emptyStore(); err != nil {
		fail(err.Error())
	}
	blobs := filepath.Join(b.root, "blobs")
	if err := os.RemoveAll(blobs); err != nil {
		fail(err.Error())
	}
	if err := os.Rename(kept, blobs); err != nil {
		fail(err.Error())
	}
	return []result{{Gitfs: summarize(g), Git: summarize(n), Note: fmt.Sprintf("git checkout.workers=%d", w)}}
}

// nextCheckout: gitfs checkout of a commit the host has not seen whose
// parent it has (the CI case: a push brings the next commit), so the
// store holds 99% of its blobs; run i checks out one of the chain's last
// commits, each after a workspace of its parent was filled. git's side is
// the same full checkout as in firstCheckout.
func (b *bench) nextCheckout() []result {
	w := b.bestWorkers()
	target := func(i int) int { return len(b.chain) - b.runs + i }
	g, n := b.alternate(func(i int) float64 {
		prev := b.chain[target(i)-1]
		if _, err := b.wsCreate(b.nextName("next-checkout-"), prev); err != nil {
			fail(err.Error())
		}
		b.awaitFill(b.distinctBlobs(prev))
		b.awaitQuiet()
		return b.gitfsCheckout(b.chain[target(i)])
	}, func(i int) float64 { return b.gitCheckout(w, b.chain[target(i)]) })
	return []result{{Gitfs: summarize(g), Git: summarize(n), Note: fmt.Sprintf("git checkout.workers=%d", w)}}
}

// laterCheckout: gitfs checkout of a commit whose blobs are stored. A
// checkout fills the store only where it can share blocks with it, so
// a workspace of the commit has the daemon fill it (as a job's would).
func (b *bench) laterCheckout() []result {
	w := b.bestWorkers()
	if _, err := b.wsCreate("later-checkout", b.chain[0]); err != nil {
		fail(err.Error())
	}
	b.awaitFill(b.distinctBlobs(b.chain[0]))
	b.awaitQuiet()
	g, n := b.alternate(func(int) float64 { return b.gitfsCheckout(b.chain[0]) }, func(int) float64 { return b.gitCheckout(w, b.chain[0]) })
	return []result{{Gitfs: summarize(g), Git: summarize(n), Note: fmt.Sprintf("git checkout.workers=%d", w)}}
}

// eightJobs: 8 jobs at once, each a workspace of chain[0] read fully,
// against 8 clones + checkouts + reads at once; and the page cache each
// side leaves (from a dropped cache when root may drop it).
func (b *bench) eightJobs() []result {
	var cacheG, cacheN []float64
	parallel := func(f func(k int)) float64 {
		var wg sync.WaitGroup
		start := timeNow()
		for k := 0; k < 8; k++ {
			wg.Add(1)
			go func() { defer wg.Done(); f(k) }()
		}
		wg.Wait()
		return sinceSeconds(start)
	}
	dropped := false
	gitfs := func(int) float64 {
		names := make([]string, 8)
		for k := range names {
			names[k] = b.nextName("eight")
		}
		dropped = dropCaches()
		before := pageCacheMiB()
		t := parallel(func(k int) {
			timed(b.dir, fmt.Sprintf("ws=$(%s --root %s -q ws create %s --repo demo --rev %s) && cd \"$ws\" && %s",
				b.bin, b.root, names[k], b.chain[0], readTree))
		})
		cacheG = append(cacheG, pageCacheMiB()-before)
		return t
	}
	git := func(int) float64 {
		dirs := make([]string, 8)
		for k := range dirs {
			dirs[k] = filepath.Join(b.dir, b.nextName("eight-clone-"))
		}
		dropCaches()
		before := pageCacheMiB()
		t := parallel(func(k int) {
			timed(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && cd %s && git checkout -q %s && %s",
				b.mirror, dirs[k], dirs[k], b.chain[0], readTree))
		})
		cacheN = append(cacheN, pageCacheMiB()-before)
		return t
	}
	g, n := b.alternate(gitfs, git)
	note := fmt.Sprintf("page cache grown: gitfs %.0f MiB, git %.0f MiB (medians", median(cacheG), median(cacheN))
	if !dropped {
		note += "; cache not dropped before: not root"
	}
	return []result{{Gitfs: summarize(g), Git: summarize(n), Note: note + ")"}}
}

// diffTags: diff -r of two commits' browse paths (tags/ on generated
// trees, commits/ on a --repo) against git diff of the two.
func (b *bench) diffTags() []result {
	a, c := "commits/"+b.chain[0], "commits/"+b.chain[1]
	if b.tags {
		a, c = "tags/t0", "tags/t1"
	}
	da, dc := filepath.Join(b.mnt, "@demo", a), filepath.Join(b.mnt, "@demo", c)
	diff := fmt.Sprintf("diff -r %s %s >/dev/null; [ $? -le 1 ]", da, dc)
	// The first run builds the two snapshots and reads both trees; the
	// second stats what the first READ (a READ invalidates the atime the
	// kernel holds): the requests counted are those of a warm run.
	timed(b.dir, diff)
	timed(b.dir, diff)
	before := b.requests()
	timed(b.dir, diff)
	reqs := diffRequests(before, b.requests())
	g, n := b.alternate(func(int) float64 { return timed(b.dir, diff) },
		func(int) float64 {
			return timed(b.dir, fmt.Sprintf("git --git-dir=%s diff %s %s >/dev/null", b.mirror, b.chain[0], b.chain[1]))
		})
	// The floor: diff -r of two native checkouts, warm, reads every
	// byte of both trees where git diff compares tree ids.
	other := filepath.Join(b.dir, "diff-native")
	if err := sh(b.dir, fmt.Sprintf("git clone -q --shared --no-checkout %s %s && git -C %s checkout -q %s", b.mirror, other, other, b.chain[1])); err != nil {
		fail(err.Error())
	}
	native := fmt.Sprintf("diff -r -x .git %s %s >/dev/null; [ $? -le 1 ]", b.native, other)
	timed(b.dir, native)
	var floor []float64
	for i := 0; i < b.runs; i++ {
		floor = append(floor, timed(b.dir, native))
	}
	return []result{{Gitfs: summarize(g), Git: summarize(n),
		Note: fmt.Sprintf("warm: the browse paths read once before; diff -r of two native checkouts %.3f s; FUSE requests of one: %s", median(floor), formatRequests(reqs))}}
}

// disk: the root after a workspace at each of the 10 successive commits
// was read fully and its blobs stored, against one native tree and the
// mirror.
func (b *bench) disk() []result {
	// This scenario's workspaces only: the suite's other scenarios leave
	// about 30 more in the same root (1.8 MB of index each on the 20k tree).
	paths := []string{filepath.Join(b.root, "mirrors"), filepath.Join(b.root, "snapshots"), filepath.Join(b.root, "blobs")}
	for _, c := range b.chain {
		name := b.nextName("disk")
		ws, err := b.wsCreate(name, c)
		if err != nil {
			fail(err.Error())
		}
		timed(ws, readTree)
		paths = append(paths, filepath.Join(b.root, "workspaces", name))
	}
	b.awaitQuiet()
	g := duKiB(paths...) / 1024
	tree := duKiB(b.native) - duKiB(filepath.Join(b.native, ".git"))
	n := (tree + duKiB(b.mirror)) / 1024
	return []result{{Unit: "MiB", Gitfs: summarize([]float64{g}), Git: summarize([]float64{n}),
		Note: fmt.Sprintf("root: the mirror, %d snapshots, the blob store, %d workspaces", len(b.chain), len(b.chain))}}
}

func diffRequests(before, after map[string]int64) map[string]int64 {
	d := map[string]int64{}
	for op, n := range after {
		if k := n - before[op]; k != 0 {
			d[op] = k
		}
	}
	return d
}

func formatRequests(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var ops []string
	for op := range m {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var parts []string
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %d", op, m[op]))
	}
	return strings.Join(parts, ", ")
}
