package mirror

import (
	"os/exec"
	"strconv"
	"sync"
)

var gitVersion struct {
	once         sync.Once
	major, minor int
}

// GitAtLeast reports whether the git on PATH is at least major.minor
// (false if it cannot tell).
func GitAtLeast(major, minor int) bool {
	gitVersion.once.Do(func() {
		out, err := exec.Command("git", "--version").Output()
		if err != nil {
			return
		}
		if m := gitVersionRE.FindStringSubmatch(string(out)); m != nil {
			gitVersion.major, _ = strconv.Atoi(m[1])
			gitVersion.minor, _ = strconv.Atoi(m[2])
		}
	})
	return gitVersion.major > major || (gitVersion.major == major && gitVersion.minor >= minor)
}
