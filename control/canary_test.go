package control

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCanaryQuery(t *testing.T) {
	tests := []struct {
		query   string
		on      bool
		every   time.Duration
		wantErr string
	}{
		{"", false, 0, ""},
		{"canary=10%25,50%25&canary_for=5s", true, 5 * time.Second, ""},
		{"canary=10", true, time.Minute, ""},
		{"canary_for=5s", false, 0, "canary_for needs canary"},
		{"canary=10&canary_for=x", false, 0, `canary_for="x"`},
		{"canary=200", false, 0, "below 100%"},
	}
	for _, tt := range tests {
		q, err := url.ParseQuery(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		ctx, err := canaryQuery(context.Background(), q)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want one saying %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.query, err)
		}
		plan, on := CanaryOf(ctx)
		if on != tt.on || plan.For != tt.every {
			t.Errorf("%q: plan %+v on %v, want on %v for %s", tt.query, plan, on, tt.on, tt.every)
		}
	}
}
