//go:build linux

// Package fuseuring serves a go-fuse RawFileSystem over FUSE's io_uring
// transport (Linux 6.14 and later, with the fuse module's enable_uring
// parameter set), where each request costs one io_uring round trip
// instead of a read(2) and a write(2) of /dev/fuse: measured by
// integration/uringprobe, 4 KiB writes into a file system that drops them
// take 0.46x the time they take through go-fuse's /dev/fuse Server.
//
// # How
//
// Mount mounts the file system by hand (mount(2) with a /dev/fuse
// descriptor of its own; root only) and answers FUSE_INIT on /dev/fuse,
// offering FUSE_OVER_IO_URING, through one go-fuse ProtocolServer. It then
// registers Options.Depth entries for each possible CPU's queue, as the
// kernel requires before it routes requests there. Each entry owns a
// header buffer and a payload buffer, mapped outside Go's heap since the
// kernel writes them, and an io_uring instance and a locked OS thread of
// its own: the kernel completes a FUSE command through task work of the
// thread that submitted it, so a thread shared with other work (or
// blocked on this very mount) could hold completions back. The thread
// answers the request the kernel put in its entry through the
// ProtocolServer and, in one io_uring_enter, commits the answer and waits
// for the next request: one system call a round trip, against a read(2)
// and a write(2) of /dev/fuse. A handler that blocks holds up its entry
// alone; the kernel gives the CPU's other entries the next requests and
// holds the rest until one is free.
//
// What the kernel still sends through /dev/fuse (INIT, FORGET and
// BATCH_FORGET, INTERRUPT, and requests made before every queue was
// registered) is read there by one goroutine and answered, one goroutine
// each, by the same ProtocolServer, so that an INTERRUPT finds the request
// it is for wherever that came from. Notifications (the kernel takes them
// on /dev/fuse only) are the Server's own: it implements go-fuse's
// fs.ServerCallbacks, to be put in fs.Options before the node tree is
// made, since a ProtocolServer neither writes them nor calls the file
// system's Init.
//
// # Locks
//
// None: what the goroutines share is written once before they start, is
// atomic, or is the kernel's.
//
// # Hazard
//
// A request the kernel put in an entry ends only when it is committed or
// the entry's io_uring instance is closed; aborting the connection
// (/sys/fs/fuse/connections/N/abort) does not end it, and from then on
// the kernel refuses the commit that would (ENOTCONN; Linux 6.18). A
// process that serves a mount and also waits on it (an in-process test)
// therefore cannot die if a request is never answered: its threads wait
// on themselves. Tests drive such mounts from other processes.
//
// Requests that block hold their entries: once Options.Depth handlers of
// one CPU's queue wait (a file system's slow lookups, or ones waiting
// for a bound of its own), every other request made on that CPU waits
// in the kernel until one is answered, where /dev/fuse would have served
// it on a goroutine of its own. Registering entries as the queue fills
// was tried: an entry registered late does not take requests the kernel
// queued before it.
package fuseuring
