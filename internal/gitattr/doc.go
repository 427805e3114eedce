// Package gitattr computes what `git checkout` writes for a blob: the
// attributes .gitattributes files give each path, and the conversions
// those attributes (and core.autocrlf, core.eol) call for. The snapshot
// reader, the mount and the materializer use it so that a workspace's and
// a checkout's bytes are a clone's, not the raw blobs.
//
// It is a port of git 2.39's attr.c, dir.c's pattern matching,
// wildmatch.c and the checkout half of convert.c, kept close to the C so
// that each rule can be checked against its source; the tests use git
// itself as the oracle (check-attr, and the files of real clones).
//
// # Use
//
// Build one Rules per tree: Add the blob of every .gitattributes in it,
// with its directory. Then, per file, Lookup(path).Conversion(cfg) says
// what to do; None() is the common case (serve the blob as is, size
// included); otherwise Apply(blobID, blob) gives the bytes.
//
// # Precedence (attr.c)
//
//   - The .gitattributes of the path's own directory beats its parent's,
//     and so on up to the root's. A file's patterns are relative to its
//     directory, and only the files of the path's ancestors count.
//   - Within a file, a later line beats an earlier one; within a line, a
//     later attribute beats an earlier one. The first line, in that
//     order, that decides an attribute fixes it: "name" sets it, "-name"
//     unsets it, "name=value" gives a value, and "!name" makes it
//     unspecified, which hides every lower line.
//   - A macro ("[attr]name attrs...", only in the root's file; the
//     built-in one is "binary", -diff -merge -text) that is set expands,
//     at its own precedence, into its attributes; an unset or valued
//     macro does not expand.
//   - Patterns are gitignore's, but negative ones ("!pat") drop the line
//     and a trailing '/' matches directories only, never the files in
//     them. A pattern without '/' matches the basename at any depth;
//     one with '/' matches the path below its directory ("**" spans
//     directories). Case matters (core.ignorecase=false).
//
// # Conversions (convert.c)
//
// In git's order: ident, then LF to CRLF, then working-tree-encoding. git
// writes some paths through stream filters and others in core
// (classify_conv_attrs); their ident expansions differ in corner cases,
// and Apply does what git does for the path. Filter drivers (such as
// LFS's smudge) are never run: the result is what git writes when the
// driver is not configured, the stored content with the other
// conversions; Attrs.Filter names the driver so that a caller can say so.
//
// # Out of scope: the caller's part
//
// Only in-tree .gitattributes are read. git also reads
// $GIT_DIR/info/attributes (above every in-tree file), core.attributesFile
// (default $XDG_CONFIG_HOME/git/attributes) and $(prefix)/etc/gitattributes
// (below the root's file); gitfs's mirrors and snapshots have none of
// them, and a caller that wanted them would need a layer this package
// does not model. Config is core.autocrlf and core.eol of the repository
// the checkout belongs to: a fresh clone's defaults are Config{}.
// Symbolic links and submodules are not converted; Apply is for regular
// files. A working-tree-encoding this package cannot write as glibc's
// iconv does (notably the CJK ones, see encoding.go) makes Apply return
// the unencoded bytes and an *EncodingError for the caller to report.
package gitattr
