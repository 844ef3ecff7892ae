package supervise

import (
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

func TestPolicy(t *testing.T) {
	b := config.Backoff{Initial: time.Second, Max: 4 * time.Second, StableAfter: time.Minute, CrashWindow: 10 * time.Second, CrashLimit: 2}
	t0 := time.Unix(1000, 0)
	type exit struct {
		clean  bool
		ranFor time.Duration
		at     time.Duration // after t0
	}
	for _, tc := range []struct {
		name   string
		mode   config.RestartPolicy
		exits  []exit
		want   restartDecision // for the last exit
		resets int             // reset before this exit index (-1: none)
	}{
		{"first crash waits initial", config.RestartAlways, []exit{{false, time.Second, 0}},
			restartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"doubling", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}},
			restartDecision{Restart: true, Delay: 2 * time.Second, Crashes: 1}, -1},
		{"capped at max", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}, {false, 0, 200 * time.Second}, {false, 0, 300 * time.Second}, {false, 0, 400 * time.Second}},
			restartDecision{Restart: true, Delay: 4 * time.Second, Crashes: 1}, -1},
		{"stable run resets the delay", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, 100 * time.Second}, {false, time.Minute, 200 * time.Second}},
			restartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"crash loop fails", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 2 * time.Second}},
			restartDecision{Restart: true, Delay: 4 * time.Second, Failed: true, Crashes: 3}, -1},
		{"exits outside the window do not count", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 10500 * time.Millisecond}},
			restartDecision{Restart: true, Delay: 4 * time.Second, Crashes: 2}, -1},
		{"reset forgets crashes", config.RestartAlways, []exit{{false, 0, 0}, {false, 0, time.Second}, {false, 0, 2 * time.Second}},
			restartDecision{Restart: true, Delay: time.Second, Crashes: 1}, 2},
		{"always restarts a clean exit", config.RestartAlways, []exit{{true, 0, 0}},
			restartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"on-failure stops after a clean exit", config.RestartOnFailure, []exit{{true, 0, 0}},
			restartDecision{Reason: "exited cleanly; restart = on-failure"}, -1},
		{"on-failure restarts a crash", config.RestartOnFailure, []exit{{false, 0, 0}},
			restartDecision{Restart: true, Delay: time.Second, Crashes: 1}, -1},
		{"never", config.RestartNever, []exit{{false, 0, 0}},
			restartDecision{Reason: "restart = never"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newRestartPolicy(tc.mode, b)
			var got restartDecision
			for i, e := range tc.exits {
				if i == tc.resets {
					p.reset()
				}
				got = p.exited(e.clean, e.ranFor, t0.Add(e.at))
			}
			if got != tc.want {
				t.Errorf("decision %+v, want %+v", got, tc.want)
			}
		})
	}
}
