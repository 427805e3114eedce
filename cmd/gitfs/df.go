package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/gitfs/gitfs/housekeeping"
)

func init() {
	var asJSON bool
	register(&command{
		name: "df", maxArgs: 0,
		summary: "show what uses the root's disk: mirrors, snapshots, contents, workspaces, ...",
		help: `Measures the root by part, counting each file once where first met: a
snapshot's packs are hard links to its mirror's, so snapshots show only what
they add (and, as shared, what they have in common with the mirrors). Sizes
are allocated blocks, as du shows them.

Examples:
  gitfs df
  gitfs df --json`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print the parts as JSON")
		},
		run: func(ctx context.Context, e *env, _ *pflag.FlagSet, _ []string) error {
			u, err := housekeeping.DiskUsage(e.root)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(e.stdout, u)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PART\tSIZE\tFILES\t")
			for _, p := range u.Parts {
				note := ""
				switch {
				case p.Name == "snapshots":
					note = fmt.Sprintf("%d snapshot(s)", len(p.Items))
					if p.Shared > 0 {
						note += fmt.Sprintf("; %s more in packs shared with mirrors", size(p.Shared))
					}
				case len(p.Items) > 0:
					var items []string
					for i, it := range p.Items {
						if i == 5 {
							items = append(items, fmt.Sprintf("and %d more", len(p.Items)-5))
							break
						}
						items = append(items, fmt.Sprintf("%s %s", it.Name, size(it.Bytes)))
					}
					note = strings.Join(items, ", ")
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.Name, size(p.Bytes), p.Files, note)
			}
			fmt.Fprintf(tw, "total\t%s\t\t\n", size(u.Total))
			tw.Flush()
			if u.SizeBytes > 0 {
				fmt.Fprintf(e.stdout, "\n%s free of %s on the file system of %s\n", size(int64(u.FreeBytes)), size(int64(u.SizeBytes)), u.Root)
			}
			return nil
		},
	})
}

// size is bytes in the largest unit that keeps a digit before the point.
func size(b int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", b)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
