package listen

import "errors"

// Held are the sockets an app's table takes instead of binding them:
// inherited from systemd, handed over by a self-upgrade, or taken from a
// dead predecessor's orphans. Sockets are in the order of the app's listen
// list, Steering has one entry per socket (nil or missing: shared), and Why
// says where they came from (logged with each listener's mode).
type Held struct {
	Sockets  []*Socket
	Steering []Steering
	Why      string
}

// Close closes the held sockets and their steering, not yet in a table, and
// joins their errors (a nil Held has nothing to close).
func (h *Held) Close() error {
	if h == nil {
		return nil
	}
	var errs []error
	for _, g := range h.Steering {
		if g != nil {
			errs = append(errs, g.Close())
		}
	}
	return errors.Join(append(errs, CloseAll(h.Sockets))...)
}
