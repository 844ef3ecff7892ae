package strategy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCanary(t *testing.T) {
	tests := []struct {
		shares  string
		every   time.Duration
		want    Canary
		wantErr string
	}{
		{"", 0, Canary{}, ""},
		{"10%", 0, Canary{Steps: []float64{0.1}, For: DefaultCanaryFor}, ""},
		{" 10% , 50 ", 30 * time.Second, Canary{Steps: []float64{0.1, 0.5}, For: 30 * time.Second}, ""},
		{"0.5%", time.Second, Canary{Steps: []float64{0.005}, For: time.Second}, ""},
		{"10%,10%", 0, Canary{}, "above the step before it"},
		{"100%", 0, Canary{}, "below 100%"},
		{"0", 0, Canary{}, "above 0%"},
		{"ten", 0, Canary{}, "is not a percentage"},
		{"10%", -time.Second, Canary{}, "must not be negative"},
	}
	for _, tt := range tests {
		got, err := ParseCanary(tt.shares, tt.every)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseCanary(%q, %s): %v", tt.shares, tt.every, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseCanary(%q, %s): err %v, want one saying %q", tt.shares, tt.every, err, tt.wantErr)
		case !reflect.DeepEqual(got, tt.want):
			t.Errorf("ParseCanary(%q, %s) = %+v, want %+v", tt.shares, tt.every, got, tt.want)
		}
	}
	if c, _ := ParseCanary("10%,50%", time.Minute); c.String() != "10%,50% for 1m0s" {
		t.Errorf("String() = %q", c.String())
	}
}

func TestCanCanary(t *testing.T) {
	for _, in := range All() {
		if err := in.Name.CanCanary(); (err == nil) != (in.Name == Swap) {
			t.Errorf("%s.CanCanary() = %v", in.Name, err)
		}
	}
}
