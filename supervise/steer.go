package supervise

import (
	"context"
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

// serveGen makes generation id of app receive the new connections of every
// steered listener; a Unix listener's held socket becomes id's.
func (m *Manager) serveGen(app string, id int) error {
	return m.view(app).table.Serve(id)
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

// queuePoll is how often quiesce reads a retiring generation's queues.
const queuePoll = 5 * time.Millisecond

// quiesce returns once no connection waits on generation id's own steered
// sockets (it keeps accepting after the switch until then), or when ctx
// ends. A socket that cannot be read counts as empty.
func (m *Manager) quiesce(ctx context.Context, app string, id int) {
	m.view(app).table.Quiesce(ctx, id, queuePoll)
}

// closeSteering closes every generation socket and frees the BPF objects.
func (m *Manager) closeSteering() {
	for app, v := range m.views() {
		if err := v.table.CloseSteering(); err != nil {
			m.logger.Warn("close steered listener", "app", app, "err", err)
		}
	}
}

// shutSteered closes the supervisor's copies of app's generation sockets
// (at shutdown, as Socket.Shut does for held ones): the generations keep
// accepting on theirs, and once they have exited new clients are refused
// instead of waiting in a queue nobody accepts from. The names of Unix
// sockets stay for their masters to unlink. Safe twice.
func (m *Manager) shutSteered(app string) {
	if err := m.view(app).table.ShutSteering(); err != nil {
		m.logger.Warn("close steered listener", "app", app, "err", err)
	}
}
