package proc

import (
	"context"
	"testing"
)

// BenchmarkForkExecReap measures one child's whole life through the reaper:
// fork+exec of /bin/true, its exit reaped by the wait4 loop and routed back.
func BenchmarkForkExecReap(b *testing.B) {
	r := NewReaper()
	defer r.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, info, err := r.Output(ctx, []string{"/bin/true"}, nil, "/")
		if err != nil || info.Code != 0 {
			b.Fatalf("true: %v %v", err, info)
		}
	}
}
