package upgrade

import (
	"fmt"
	"log/slog"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
)

// HeldSockets checks h against cfg (see Validate) and wraps the handed-over
// listeners by app name, matching them to the configuration by their raw
// address; a listener the configuration no longer has is an error (live
// configuration changes are not an upgrade's job).
func (h *Handover) HeldSockets(cfg *config.Config) (map[string][]*listen.Socket, error) {
	if err := h.Validate(cfg); err != nil {
		return nil, err
	}
	out := map[string][]*listen.Socket{}
	for _, app := range cfg.Apps {
		got := h.Sockets[app.Name]
		if len(got) != len(app.Listen) {
			return nil, fmt.Errorf("app %s: %d listeners handed over, configuration has %d", app.Name, len(got), len(app.Listen))
		}
		for i, l := range app.Listen {
			if got[i].Raw != l.Raw {
				return nil, fmt.Errorf("app %s: handed-over listener %s does not match configured %s", app.Name, got[i].Raw, l.Raw)
			}
			s, err := listen.AdoptHeld(l, got[i].FD, got[i].Ino, got[i].Hold)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", app.Name, err)
			}
			out[app.Name] = append(out[app.Name], s)
		}
	}
	return out, nil
}

// Held adopts the steering handed over with app's held sockets socks (see
// listen.SteeringState.Adopt) and returns them as the app's listen.Held.
// A listener whose steering cannot be adopted is served shared, with a
// warning saying why. Either way the handed-over steering descriptors are
// closed, and on return h names the steering descriptors that stay open
// (the adopted duplicates, or none), for a fallback to the previous image.
func (h *Handover) Held(app string, socks []*listen.Socket, logger *slog.Logger) *listen.Held {
	hs := h.Sockets[app]
	gens := make([]listen.Steering, len(socks))
	for i, s := range socks {
		if i >= len(hs) {
			continue
		}
		sh := &hs[i]
		st := listen.SteeringState{Steer: sh.Steer, Rename: sh.Rename}
		g, kept, err, closed := st.Adopt(s)
		gens[i], sh.Steer, sh.Rename = g, kept.Steer, kept.Rename
		if closed != nil {
			logger.Warn("close handed-over steering", "app", app, "listener", s.Spec.Raw, "err", closed)
		}
		if err != nil {
			logger.Warn("self-upgrade: "+st.Kind()+" steering not adopted; the listener is shared until the supervisor restarts",
				"app", app, "listener", s.Spec.Raw, "err", err)
		}
	}
	return &listen.Held{Sockets: socks, Steering: gens, Why: "handed over by a self-upgrade"}
}
