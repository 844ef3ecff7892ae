package supervise

import (
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/upgrade"
)

// handoverLog returns app's recent output lines for the hand-over state
// (at most upgrade.LogHandoverBytes of text), or nil.
func (m *Manager) handoverLog(app string) []upgrade.LogLine {
	l := m.view(app).log
	if l == nil {
		return nil
	}
	recent := l.Recent(upgrade.LogHandoverBytes)
	out := make([]upgrade.LogLine, len(recent))
	for i, r := range recent {
		out[i] = upgrade.LogLine{Time: r.Time, Gen: r.Gen, Stream: uint8(r.Stream), Text: r.Text, Part: r.Part, More: r.More}
	}
	return out
}

// restoreLog makes the lines the previous image handed over app's history,
// before its handed-over generation's output is read again.
func (m *Manager) restoreLog(app string, lines []upgrade.LogLine) {
	l := m.view(app).log
	if l == nil || len(lines) == 0 {
		return
	}
	batch := make([]logs.Line, len(lines))
	for i, r := range lines {
		batch[i] = logs.Line{Time: r.Time, Gen: r.Gen, Stream: logs.Stream(r.Stream), Text: r.Text, Part: r.Part, More: r.More}
	}
	l.Preload(batch)
}
