package heyout

import (
	"testing"
	"time"
)

const sample = `
Summary:
  Total:	10.0040 secs
  Slowest:	1.2210 secs
  Fastest:	0.0010 secs

Response time histogram:
  0.001 [1]	|

Latency distribution:
  10% in 0.0100 secs
  50% in 0.0200 secs
  99% in 0.2800 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0001 secs, 0.0000 secs, 0.0100 secs

Status code distribution:
  [200]	9000 responses
  [502]	3 responses

Error distribution:
  [5]	Get "http://127.0.0.1:8000/": dial tcp 127.0.0.1:8000: connect: connection refused
  [2]	Get "http://127.0.0.1:8000/": EOF
`

func TestParse(t *testing.T) {
	s := Parse(sample)
	if s.Requests != 9010 || s.Status[200] != 9000 || s.Status[502] != 3 || len(s.Errors) != 2 {
		t.Errorf("counts: %+v", s)
	}
	if s.P50 != 20*time.Millisecond || s.P99 != 280*time.Millisecond || s.Slowest != 1221*time.Millisecond {
		t.Errorf("latency: p50 %v p99 %v slowest %v", s.P50, s.P99, s.Slowest)
	}
	if empty := Parse("hey: connection refused\n"); empty.Requests != 0 || len(empty.Status) != 0 {
		t.Errorf("no summary: %+v", empty)
	}
}
