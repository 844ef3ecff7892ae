package supctl

import (
	"strings"
	"testing"
	"time"
)

func TestCanaryFlags(t *testing.T) {
	tests := []struct {
		flags   map[string]string
		want    canaryFlag
		wantErr string
	}{
		{map[string]string{}, canaryFlag{}, ""},
		{map[string]string{"canary": "10%,50%", "for": "30s"}, canaryFlag{shares: "10%,50%", every: 30 * time.Second}, ""},
		{map[string]string{"for": "30s"}, canaryFlag{}, "--for needs --canary"},
		{map[string]string{"canary": "10%", "for": "soon"}, canaryFlag{}, `--for "soon"`},
		{map[string]string{"canary": "50%,10%"}, canaryFlag{}, "above the step before it"},
	}
	for _, tt := range tests {
		got, err := canaryFlags(tt.flags)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("canaryFlags(%v): %v", tt.flags, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("canaryFlags(%v): err %v, want one saying %q", tt.flags, err, tt.wantErr)
		case got != tt.want:
			t.Errorf("canaryFlags(%v) = %+v, want %+v", tt.flags, got, tt.want)
		}
	}
}
