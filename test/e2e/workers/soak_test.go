//go:build soak

package workers

import "testing"

// TestRecycleSoak is TestRecycleLeakingWorker's load for 10 minutes (make
// soak): about 4,800 requests leaking 24 GiB in all, with RSS bounded.
func TestRecycleSoak(t *testing.T) {
	recycleUnderLoad(t, "-z", "10m")
}
