package gen

import "github.com/gunisup/supervisor/recovery"

// OrphanID is the generation number of an adopted orphan generation (see
// recovery.GenID).
const OrphanID = recovery.GenID

// Orphan is the generation a dead predecessor left serving an app (see
// recovery.Gen), as the app's owner tracks it until a new generation
// takes over.
type Orphan struct{ *recovery.Gen }

// Info describes the orphan generation as Generation.Info does (no probe
// listener; its link is not followed).
func (g *Orphan) Info() Info {
	return Info{ID: OrphanID, PID: g.PID(), Started: g.Started(), Dir: g.Dir()}
}
