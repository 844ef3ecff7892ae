package status

import "time"

// Observer receives events that metrics turn into counters and histograms.
// Calls come from app owner goroutines and must not block.
type Observer interface {
	// ReloadDone reports a finished reload; result is "ok", "rolled_back" or "failed".
	ReloadDone(app, result string, d time.Duration)
	// HealthChecked reports one health check of the app's serving generation.
	HealthChecked(app string, ok bool, d time.Duration)
}

// NopObserver ignores every event.
type NopObserver struct{}

// ReloadDone implements Observer.
func (NopObserver) ReloadDone(string, string, time.Duration) {}

// HealthChecked implements Observer.
func (NopObserver) HealthChecked(string, bool, time.Duration) {}
