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
//     cache, the blob store ROOT/blobs, packs).
//   - fill.go: filling the blob store (internal/blobstore) with a
//     snapshot's blobs, by git cat-file over the pinned packs or
//     internal/pack; in the background for the daemon.
//   - trim.go: the blob store's bound, and trimming it without touching a
//     blob of a snapshot in use.
//   - compat.go: what was the per-commit contents file's API, on the store.
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
//	Store.mu             Store.open, every open Snapshot.refs,   held for map and count updates, and
//	                     Store.filled                            to open a snapshot on its first lease
//	idSet.mu             one idSet (Store.whole, Store.attrFree) a leaf: map updates and lookups only
//
// internal/pack's delta-base cache has a lock of its own, a leaf taken only
// inside pack calls; internal/blobstore has none (one system call a step).
// Store.building (per commit) and Store.inflate (per large blob a reader
// stores) are singleflight groups: a caller may wait in them, holding none
// of the locks above. The background filler takes a reference on each
// snapshot it fills (Store.mu, briefly) and holds no lock while filling:
// no read ever waits for it.
//
// Cross-process flocks, files under ROOT/locks:
//
//	flock                       held                                          by
//	snapshot-<commit>.lease     shared from Get until release                 every user; gc tries it exclusively
//	snapshot-<commit>.build     exclusive while the snapshot is built         Get waits for it, holding its lease;
//	                                                                          gc only tries it
//
// Order: a lease before the build flock (Get). TrimBlobs only tries leases
// (a held one keeps the snapshot's blobs). The blob store needs no flock:
// each of its names only ever holds one verified content.
package snapshot
