package supervise

import (
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
)

// refuse closes app's listeners (held sockets and steering) after a stop by
// request, once nothing of the app runs: a TCP port is unbound
// (connect: refused) and a Unix socket's path is removed (connect: no such
// file), so a proxy fails over at once instead of waiting in a backlog
// nobody accepts from. An app with a `systemd:NAME` listener keeps its
// table: systemd's socket cannot be bound again. The table stays in the
// slot, closed, for status; relisten binds it again.
func (m *Manager) refuse(app *config.App) {
	if listen.HasSystemd(app) {
		m.logger.Info("stopped app keeps its listeners: systemd passed them", "app", app.Name)
		return
	}
	t := m.view(app.Name).table
	if t == nil || len(t.Entries()) == 0 {
		return
	}
	if err := t.Close(); err != nil {
		m.logger.Warn("close listeners of stopped app", "app", app.Name, "err", err)
	}
	m.logger.Info("listeners closed: new connections are refused until the app starts", "app", app.Name)
}

// relisten binds app's listeners again when refuse closed them (nothing to
// do otherwise), steered as at start, each TCP one at the address it had
// (a configured port 0 keeps the port the kernel chose). An error names the
// listener, as at start; the table stays closed then.
func (m *Manager) relisten(app *config.App) error {
	old := m.view(app.Name).table
	if !old.Closed() {
		return nil
	}
	t, err := old.Reopen(app, m.bpfWhy, m.logger)
	if err != nil {
		return err
	}
	m.mu.Lock()
	s := m.apps[app.Name]
	swapped := s != nil && s.table == old
	if swapped {
		s.table = t
	}
	m.mu.Unlock()
	if !swapped {
		return t.Close() // an update gave the app a new table meanwhile
	}
	m.logger.Info("listeners bound again", "app", app.Name)
	return nil
}
