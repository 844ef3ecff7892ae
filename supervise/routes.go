package supervise

import "time"

// swapped starts the comparison of generation newID of app with oldID,
// which it replaced now; it returns the comparison window (0: none).
func (m *Manager) swapped(app string, oldID, newID int) time.Duration {
	if m.routes == nil {
		return 0
	}
	if a := m.routes.App(app); a != nil {
		return a.Swapped(oldID, newID)
	}
	return 0
}

// comparison is app's latest comparison line ("" for none).
func (m *Manager) comparison(app string) string {
	if m.routes == nil {
		return ""
	}
	return m.routes.Comparison(app)
}
