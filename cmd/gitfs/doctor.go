package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/daemon"
)

func init() {
	var asJSON bool
	register(&command{
		name: "doctor", maxArgs: 0,
		summary: "check this host for gitfs: FUSE, fusermount3, fuse.conf, git, root, mounts, disk",
		help: `Checks what 'gitfs serve' needs, for the user running it and the root given:
the FUSE device, fusermount3 (for non-root daemons), user_allow_other in
/etc/fuse.conf, git's version, the root's permissions, gitfs mounts whose
daemon died, free disk and inodes, and whether a daemon answers. Each
problem comes with what to do. Changes nothing; exits 1 if a check fails.

Examples:
  gitfs doctor
  sudo gitfs --root /var/lib/gitfs doctor`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the checks as JSON")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			checks := daemon.Doctor(ctx, e.root)
			failed := 0
			for _, c := range checks {
				if c.Status == "fail" {
					failed++
				}
			}
			if asJSON {
				if err := writeJSON(e.stdout, checks); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					fmt.Fprintf(e.stdout, "%-5s %-12s %s\n", strings.ToUpper(c.Status), c.Name, c.Detail)
					if c.Fix != "" && c.Status != "ok" {
						fmt.Fprintf(e.stdout, "%-5s %-12s fix: %s\n", "", "", c.Fix)
					}
				}
			}
			if failed > 0 {
				return exitStatus{fmt.Errorf("%d check(s) failed", failed), 1}
			}
			return nil
		},
	})
}
