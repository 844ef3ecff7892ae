package proc

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAwaitStop: done closing in time needs no kill; a process that waits
// out the timeout is killed and its exit then counts; one that outlives the
// kill is an error.
func TestAwaitStop(t *testing.T) {
	for _, tc := range []struct {
		name       string
		closeFirst bool // done closed before AwaitStop
		killCloses bool // kill closes done
		wantKill   bool
		wantErr    string
	}{
		{"exits in time", true, false, false, ""},
		{"killed", false, true, true, ""},
		{"outlives the kill", false, false, true, "still alive 5s after SIGKILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			if tc.closeFirst {
				close(done)
			}
			killed := false
			kill := func() {
				killed = true
				if tc.killCloses {
					close(done)
				}
			}
			err := AwaitStop(context.Background(), done, 10*time.Millisecond, kill)
			if killed != tc.wantKill {
				t.Errorf("killed = %v, want %v", killed, tc.wantKill)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
