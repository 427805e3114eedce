package main

import "golang.org/x/sys/unix"

// oPath: macOS has no O_PATH; a read-only directory descriptor serves.
const oPath = unix.O_RDONLY
