package locks

import "golang.org/x/sys/unix"

// oPath opens a directory only to name things in it (Linux's O_PATH: no
// read permission needed, no access time).
const oPath = unix.O_PATH

// renameNoReplace renames from to to, failing with EEXIST if to exists
// (even an empty directory, which rename(2) would replace).
func renameNoReplace(from, to string) error {
	return unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
}
