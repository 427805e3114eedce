// Package snapshot keeps immutable per-commit snapshots under
// ROOT/snapshots: hard links to the mirror's packs (pinned so that no mirror
// gc can take objects away), verified before they are published by one
// rename, leased while in use, and read in-process by internal/pack (pread,
// zlib and delta chains over the pinned packs, one reader per pack for
// trees, sizes and blob bytes), with caches bounded in bytes. fs and
// materialize read trees and blobs only through this package, and no tree
// reaches them unchecked: every tree is decoded against the rules of
// names.go (no ".", "..", ".git" or aliases, "/", NUL, duplicates,
// mis-sorted or oversized trees), and a build that meets a bad tree, or one
// nested deeper than MaxDepth, publishes nothing.
//
// # Files
//
//   - store.go: the Store, leases (Get and release), build and publish, the
//     check made on every open, List and GC.
//   - verify.go: what a build verifies before it publishes.
//   - snapshot.go: a Snapshot, its trees (decoded and checked), Lookup and
//     Find (one binary search in git order).
//   - names.go: the rules every tree entry must pass.
//   - blob.go: every choice of where a blob's bytes come from (memory
//     cache, contents file, ROOT/blobs, packs).
//   - contents.go: the contents file, every blob of a snapshot inflated once.
//   - holders.go: directories outside the store that keep a snapshot alive.
//   - housekeeping.go: when each snapshot was last used; pruning markers and
//     lock files that outlive their snapshots.
//   - metrics.go: the counters the daemon exports (Metrics takes Store.mu
//     only to count open snapshots and leases).
//   - resolve.go: Resolve, a rev with the published-snapshot fallback.
//
// # Locks
//
// In-process locks, in the order they may be taken (never take one while
// holding a lock below it):
//
//	lock                 guards                                  notes
//	Store.mu             Store.open, every open Snapshot.refs    held for map and count updates, and
//	                                                             to open a snapshot on its first lease
//	Snapshot.contentsMu  Snapshot.contents, .contentsLooked      taken after Store.mu (DropContents)
//
// internal/pack's delta-base cache has a lock of its own, a leaf taken only
// inside pack calls. Store.building (per commit) and Store.inflate (per
// blob) are singleflight groups: a caller may wait in them, holding none of
// the locks above.
//
// Cross-process flocks, files under ROOT/locks:
//
//	flock                       held                                          by
//	snapshot-<commit>.lease     shared from Get until release                 every user; gc tries it exclusively
//	snapshot-<commit>.build     exclusive while the snapshot is built         Get waits for it, holding its lease;
//	                                                                          gc only tries it
//	snapshot-<commit>.contents  exclusive while the contents file is made     Inflate, DropContents, and
//	                            or removed                                    loadContents removing a damaged one
//
// Order: a lease before the build flock (Get); the contents flock before
// Snapshot.contentsMu (Inflate). Under contentsMu the contents flock is
// only ever tried, never waited for, so that nesting cannot deadlock.
// Contents.refs is atomic: a blob opened from the contents file holds it
// open with no lock.
package snapshot
