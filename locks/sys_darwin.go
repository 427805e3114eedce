package locks

import "golang.org/x/sys/unix"

// oPath: macOS has no O_PATH; a read-only directory descriptor serves.
const oPath = unix.O_RDONLY

// renameNoReplace renames from to to, failing with EEXIST if to exists
// (renamex_np's RENAME_EXCL).
func renameNoReplace(from, to string) error {
	return unix.RenamexNp(from, to, unix.RENAME_EXCL)
}
