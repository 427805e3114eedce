package daemon

import (
	"syscall"
	"testing"
	"time"
)

// BenchmarkObserveFUSE is what metrics add to every FUSE request the
// daemon answers (a warm lookup or read costs the kernel and go-fuse
// several microseconds).
func BenchmarkObserveFUSE(b *testing.B) {
	m := newMetrics(&Daemon{})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observeFUSE("lookup", 20*time.Microsecond, 0)
		}
	})
}

func TestObserveFUSECountsErrorsByErrno(t *testing.T) {
	m := newMetrics(&Daemon{})
	m.observeFUSE("lookup", time.Microsecond, syscall.ENOENT)
	m.observeFUSE("lookup", time.Microsecond, 0)
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range samples(fams) {
		got[s.Name+"/"+s.Labels["op"]+"/"+s.Labels["errno"]] = s.Value
	}
	if got["gitfs_fuse_request_duration_seconds/lookup/"] != 2 || got["gitfs_fuse_request_errors_total/lookup/ENOENT"] != 1 {
		t.Errorf("samples: %v", got)
	}
}
