package status

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Readiness is the supervisor's readiness as systemd and load balancers see
// it, computed from the apps' snapshots by Assess. Only required apps that
// are meant to run count: an app with required = false, one stopped on
// purpose, or one that finished under its restart policy (restart =
// "never") never holds readiness back.
type Readiness struct {
	// Started: every counted app has made its first start attempt and is
	// running or backing off (restarting after an exit). It gates READY=1,
	// so that one crash-looping app does not keep the host from starting.
	Started bool
	// Serving: every counted app is running and healthy (/readyz).
	Serving bool
	// NotHealthy names each counted app that is not running healthy, with
	// its state or "unhealthy".
	NotHealthy map[string]string
}

// Assess computes the Readiness of snaps.
func Assess(snaps []AppSnapshot) Readiness {
	r := Readiness{Started: true, Serving: true}
	for _, s := range snaps {
		if !s.Required || !s.Wanted {
			continue
		}
		why := ""
		switch {
		case s.State != Running:
			why = s.State.String()
		case !s.Healthy:
			why = "unhealthy"
		}
		if !s.Attempted || s.State == Starting || s.State == Stopping || s.State == Stopped {
			r.Started = false
		}
		if why == "" {
			continue
		}
		r.Serving = false
		if r.NotHealthy == nil {
			r.NotHealthy = map[string]string{}
		}
		r.NotHealthy[s.Name] = why
	}
	return r
}

// Summary is a one-line account of the apps that are not healthy, sorted
// by name ("" when all are): "not healthy: db (failed), web (unhealthy)".
func (r Readiness) Summary() string {
	if len(r.NotHealthy) == 0 {
		return ""
	}
	names := slices.Sorted(maps.Keys(r.NotHealthy))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s (%s)", n, r.NotHealthy[n])
	}
	return "not healthy: " + strings.Join(parts, ", ")
}
