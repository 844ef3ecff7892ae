package supervise

import "github.com/gunisup/supervisor/recovery"

// orphanGenID is the generation number of an adopted orphan generation
// (see recovery.GenID).
const orphanGenID = recovery.GenID

// orphanGen is the generation a dead predecessor left serving an app (see
// recovery.Gen), as the owner tracks it until a new generation takes over.
type orphanGen struct{ *recovery.Gen }

// Info implements generation.
func (g *orphanGen) Info() GenInfo {
	return GenInfo{ID: orphanGenID, PID: g.PID(), Started: g.Started(), Dir: g.Dir()}
}

var _ generation = (*orphanGen)(nil)
