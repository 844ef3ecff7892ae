package config

import (
	"errors"
	"reflect"
	"testing"
)

// TestResolve: all, group:NAME and app names expand to app names in file
// order without duplicates; an unknown app or group is ErrNoSuchApp.
func TestResolve(t *testing.T) {
	cfg := &Config{
		Apps:   []*App{{Name: "web"}, {Name: "worker"}, {Name: "beat"}},
		Groups: []Group{{Name: "back", Apps: []string{"beat", "worker"}}},
	}
	tests := []struct {
		targets []string
		want    []string
		err     bool
	}{
		{[]string{"all"}, []string{"web", "worker", "beat"}, false},
		{[]string{"group:back"}, []string{"worker", "beat"}, false},
		{[]string{"beat", "web", "beat"}, []string{"web", "beat"}, false},
		{[]string{"group:back", "web"}, []string{"web", "worker", "beat"}, false},
		{[]string{"ghost"}, nil, true},
		{[]string{"group:ghost"}, nil, true},
	}
	for _, tc := range tests {
		got, err := cfg.Resolve(tc.targets)
		if (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrNoSuchApp)) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Resolve(%v) = %v, %v; want %v (error %v)", tc.targets, got, err, tc.want, tc.err)
		}
	}
}
