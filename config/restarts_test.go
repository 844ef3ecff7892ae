package config

import (
	"testing"
	"time"
)

func TestRestarts(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 4 * time.Second, StableAfter: time.Minute, CrashWindow: 10 * time.Second, CrashLimit: 2}
	t0 := time.Unix(1000, 0)
	type exit struct {
		clean  bool
		ranFor time.Duration
		at     time.Duration // after t0
	}
	for _, tc := range []struct {
		name   string
		mode   RestartPolicy
		exits  []exit
		want   RestartDecision // for the last exit
		resets int             // reset before this exit index (-1: none)
	}{
		{"first crash waits initial", RestartAlways, []exit{{false, time.Second, 0}},
			RestartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"doubling", RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}},
			RestartDecision{Restart: true, Delay: 2 * time.Second, Crashes: 1}, -1},
		{"capped at max", RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}, {false, 0, 200 * time.Second}, {false, 0, 300 * time.Second}, {false, 0, 400 * time.Second}},
			RestartDecision{Restart: true, Delay: 4 * time.Second, Crashes: 1}, -1},
		{"stable run resets the delay", RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}, {false, time.Minute, 200 * time.Second}},
			RestartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"crash loop fails", RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 2 * time.Second}},
			RestartDecision{Restart: true, Delay: 4 * time.Second, Failed: true, Crashes: 3}, -1},
		{"exits outside the window do not count", RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 10500 * time.Millisecond}},
			RestartDecision{Restart: true, Delay: 4 * time.Second, Crashes: 2}, -1},
		{"reset forgets crashes", RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 2 * time.Second}},
			RestartDecision{Restart: true, Delay: time.Second, Crashes: 1}, 2},
		{"always restarts a clean exit", RestartAlways, []exit{{true, 0, 0}},
			RestartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"on-failure stops after a clean exit", RestartOnFailure, []exit{{true, 0, 0}},
			RestartDecision{Reason: "exited cleanly; restart = on-failure"}, -1},
		{"on-failure restarts a crash", RestartOnFailure, []exit{{false, 0, 0}},
			RestartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"never", RestartNever, []exit{{false, 0, 0}},
			RestartDecision{Reason: "restart = never"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Restarts
			app := &App{Restart: tc.mode, Backoff: b}
			var got RestartDecision
			for i, e := range tc.exits {
				if i == tc.resets {
					p.Reset()
				}
				got = p.Exited(app, e.clean, e.ranFor, t0.Add(e.at))
			}
			if got != tc.want {
				t.Errorf("decision %+v, want %+v", got, tc.want)
			}
		})
	}
}
