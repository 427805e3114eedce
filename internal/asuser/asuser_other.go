//go:build !linux

package asuser

import (
	"errors"
	"fmt"
	"os"
)

// Do runs fn as u. Only Linux lets one thread take another user's
// file-system credentials (setfsuid); elsewhere (macOS, for the CLI and
// the materializer) fn runs directly when u is nil or this process's own
// user, and acting as anyone else is an error.
func (u *User) Do(fn func() error) error {
	if fn == nil {
		return errors.New("asuser: no function to run")
	}
	if u == nil || uint32(os.Geteuid()) == u.UID {
		return fn()
	}
	return fmt.Errorf("asuser: cannot act as uid %d on this system (only Linux can write as another user)", u.UID)
}
