package e2e

import (
	"context"
	"time"
)

// Output is what the background supctl printed so far.
func (a *AsyncCtl) Output() string { return a.out.String() }

// Done is closed when the background supctl has exited.
func (a *AsyncCtl) Done() <-chan struct{} { return a.done }

// Ready waits up to timeout until the supervisor answers a status request
// on its control socket; it reports false when the supervisor exited first
// or did not answer in time.
func (s *Supervisor) Ready(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client().Status(ctx, "")
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-s.done:
			return false
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
	return false
}
