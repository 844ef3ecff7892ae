package supervise

import (
	"fmt"
	"time"

	"github.com/gunisup/supervisor/listen"
)

// socketUse says which listening sockets a new generation gets.
type socketUse int

const (
	// useServing: a start or restart serves at once; on a Unix listener it
	// shares the serving socket and the connections queued there.
	useServing socketUse = iota
	// useOwn: a reload's takeover gets its own sockets, which receive
	// connections only once it commits.
	useOwn
)

func (u socketUse) String() string {
	if u == useOwn {
		return "own"
	}
	return "serving"
}

// genSockets returns the descriptors generation id of app gets, one per
// held socket, and the sockets its master's stop goes through (see
// gen.Request.Stop): use says whether it takes over with its own sockets
// (see listen.Table.Open).
func (m *Manager) genSockets(app string, id int, use socketUse) ([]int, []*listen.Socket, error) {
	fds, named, err := m.view(app).table.Open(id, use == useOwn)
	if err != nil {
		return nil, nil, fmt.Errorf("app %s: %w", app, err)
	}
	return fds, named, nil
}

// releaseGen records that generation id of app exited (see listen.Steering.Release).
func (m *Manager) releaseGen(app string, id int) {
	if err := m.view(app).table.Release(id); err != nil {
		m.logger.Warn("release generation socket", "app", app, "generation", id, "err", err)
	}
}

// shareGen makes a USR2 child (to) use its parent's (from) steered sockets.
func (m *Manager) shareGen(app string, from, to int) {
	m.view(app).table.Share(from, to)
}

// queuePoll is how often a retiring generation's queues are read while it
// quiesces (see listen.Table.Quiesce).
const queuePoll = 5 * time.Millisecond
