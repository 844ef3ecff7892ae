package upgrade

import "time"

// LogHandoverBytes bounds the text of the recent lines handed over per app
// (AppHandover.Log): the state of 50 apps stays within a few MB.
const LogHandoverBytes = 64 << 10

// LogLine is one line of an app's recent output in the hand-over state.
type LogLine struct {
	Time   time.Time `json:"t"`
	Gen    int       `json:"gen"`
	Stream uint8     `json:"s"`
	Text   string    `json:"x"`
	Part   int       `json:"part,omitempty"`
	More   bool      `json:"more,omitempty"`
}
