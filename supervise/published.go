package supervise

import "github.com/gunisup/supervisor/status"

// Published returns a copy of every app's last published snapshot, in
// file order, without reading /proc: WorkerPIDs and Processes are empty
// (Snapshots fills them with a scan of every process). For frequent
// readers such as `supctl top`.
func (m *Manager) Published() []status.AppSnapshot {
	owners := m.owners()
	out := make([]status.AppSnapshot, 0, len(owners))
	for _, a := range owners {
		out = append(out, *a.snap.Load())
	}
	return out
}

// CgroupDir returns the directory of app's cgroup, "" when it has none.
func (m *Manager) CgroupDir(app string) string {
	if g := m.view(app).cgroup; g != nil {
		return g.Path
	}
	return ""
}
