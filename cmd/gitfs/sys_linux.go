package main

import "golang.org/x/sys/unix"

// oPath opens a directory only to name things in it (O_PATH).
const oPath = unix.O_PATH
