package recovery

import (
	"log/slog"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
)

// Held returns the sockets app's table holds for the sockets taken from its
// orphans, with their steering rebuilt when rebuild is set (the app tracks
// its orphans' serving generation): BPF for a TCP listener, with the
// objects the predecessor recorded (see listen.RecoverSteered), unless
// bpfWhy says why BPF is unavailable; rename for a Unix one, whose taken
// socket serves as the orphans' generation's (GenID). A new holder stands
// in place of each taken TCP socket it steers, which it closes. A listener
// that cannot be steered stays shared, logged with why.
func (o *Orphans) Held(app *config.App, taken []*listen.Socket, rebuild bool, bpfWhy func() string, logger *slog.Logger) *listen.Held {
	h := &listen.Held{Sockets: slices.Clone(taken), Steering: make([]listen.Steering, len(taken)), Why: "taken over from the previous supervisor's processes"}
	if !rebuild || app.Steering == config.SteeringShared {
		return h
	}
	for i, s := range taken {
		switch s.Spec.Network {
		case config.NetUnix:
			h.Steering[i] = steerUnix(app.Name, s, logger)
		case config.NetTCP:
			h.Sockets[i], h.Steering[i] = o.steerBPF(app.Name, s, bpfWhy, logger)
		}
	}
	return h
}

// steerUnix steers the Unix socket taken from app's orphans by rename,
// recorded as the orphans' generation's (nil, logged: shared).
func steerUnix(app string, s *listen.Socket, logger *slog.Logger) listen.Steering {
	u, err := listen.SteerUnix(s)
	if err == nil {
		_, err = u.Add(GenID, false)
	}
	if err != nil {
		logger.Warn("recovery: rename steering not rebuilt; the listener is shared", "app", app, "listener", s.Spec.Raw, "err", err)
		return nil
	}
	return u
}

// steerBPF rebuilds the BPF steering of the TCP socket taken from app's
// orphans and returns the socket to hold for it and the steering, or s and
// nil (logged: shared).
func (o *Orphans) steerBPF(app string, s *listen.Socket, bpfWhy func() string, logger *slog.Logger) (*listen.Socket, listen.Steering) {
	why := listen.WhyNoBPF(bpfWhy)
	if why != "" {
		logger.Warn("recovery: BPF steering unavailable; the listener is shared", "app", app, "listener", s.Spec.Raw, "why", why)
		return s, nil
	}
	ids := o.Steering(app, s.Spec.Raw)
	if ids == nil {
		logger.Warn("recovery: the previous supervisor recorded no BPF steering; the listener is shared", "app", app, "listener", s.Spec.Raw)
		return s, nil
	}
	g, holder, err := listen.RecoverSteered(s.Spec, s, *ids, GenID)
	if err != nil {
		logger.Warn("recovery: BPF steering not rebuilt; the listener is shared", "app", app, "listener", s.Spec.Raw, "err", err)
		return s, nil
	}
	if err := s.Close(); err != nil {
		logger.Warn("recovery: close the taken socket", "app", app, "listener", s.Spec.Raw, "err", err)
	}
	return holder, g
}
