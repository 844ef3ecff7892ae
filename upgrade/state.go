package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
)

// HandoverVersion is bumped when the state format changes incompatibly; a
// new image refuses state of another version (and the upgrade is refused
// before the exec, by the new binary's dry run).
const HandoverVersion = 1

// Handover is what one supervisor image passes to the next across an
// in-place re-exec: the held sockets and the running generations (their
// processes stay children of the same PID), so no app notices. The
// supervise package produces it (Manager.Freeze) and takes it back.
type Handover struct {
	Version int                         `json:"version"`
	Sockets map[string][]SocketHandover `json:"sockets"`
	Apps    []AppHandover               `json:"apps"`
}

// SocketHandover is a held listener: its descriptor survives the exec.
type SocketHandover struct {
	Raw string `json:"raw"`
	FD  int    `json:"fd"`
	// Ino identifies a Unix socket path the supervisor bound (and removes at exit).
	Ino uint64 `json:"ino,omitempty"`
	// Hold is the hidden name a Unix socket was bound at (see listen.Socket).
	Hold string `json:"hold,omitempty"`
	// Steer is the BPF steering of a TCP listener whose holder FD is (nil:
	// the listener is shared, or the image that wrote the state does not
	// hand steering over). A new image that cannot adopt it serves the
	// listener shared.
	Steer *listen.SteerHandover `json:"steer,omitempty"`
	// Rename is the rename steering of a Unix listener, whose serving
	// socket FD is (nil: the listener is shared, or the image that wrote
	// the state does not hand rename steering over). A new image that
	// cannot adopt it serves the listener shared.
	Rename *listen.UnixSteerHandover `json:"rename,omitempty"`
}

// SocketsOf returns the hand-over records of one app's held listeners, in
// listen order (see listen.Table.Handover).
func SocketsOf(hs []listen.ListenerHandover) []SocketHandover {
	out := make([]SocketHandover, len(hs))
	for i, h := range hs {
		out[i] = SocketHandover{Raw: h.Raw, FD: h.FD, Ino: h.Ino, Hold: h.Hold, Steer: h.Steer, Rename: h.Rename}
	}
	return out
}

// GenHandover is a running generation: everything the next image needs to
// keep supervising it and to reload it the same way.
type GenHandover struct {
	ID        int       `json:"id"`
	PID       int       `json:"pid"`
	PGID      int       `json:"pgid"`
	Started   time.Time `json:"started"`
	Dir       string    `json:"dir"`
	ProbeAddr string    `json:"probe_addr,omitempty"`
	Pidfile   string    `json:"pidfile,omitempty"`
	// FollowsLink: the master was started from the app's `directory` link,
	// so a USR2 re-exec follows the link (see gen.Generation).
	FollowsLink bool `json:"follows_link,omitempty"`
	// OutFD is the read end of the generation's stdout pipe (-1 if none).
	// When ErrFD is -1, the pipe carries stderr too.
	OutFD int `json:"out_fd"`
	// ErrFD is the read end of the generation's stderr pipe (-1 if none).
	ErrFD int `json:"err_fd"`
	// AccessFD is the read end of the generation's access pipe, the
	// lines of its route metrics (-1 if none).
	AccessFD int `json:"access_fd"`
}

// UnmarshalJSON decodes g, taking a descriptor the state does not name as
// -1 (none): a state written by an image with one output pipe per
// generation has no err_fd, one without route metrics no access_fd.
func (g *GenHandover) UnmarshalJSON(b []byte) error {
	type plain GenHandover
	p := plain{OutFD: -1, ErrFD: -1, AccessFD: -1}
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("generation hand-over state: %w", err)
	}
	*g = GenHandover(p)
	return nil
}

// LogHandoverBytes bounds the text of the recent lines handed over per app
// (AppHandover.Log): the state of 50 apps stays within a few MB.
const LogHandoverBytes = 64 << 10

// AppHandover is one app owner's state.
type AppHandover struct {
	Name       string         `json:"name"`
	Want       bool           `json:"want"`
	Seq        int64          `json:"seq"`
	Gen        *GenHandover   `json:"gen,omitempty"`
	Restarts   int            `json:"restarts"`
	LastExit   *proc.ExitInfo `json:"last_exit,omitempty"`
	LastReload *reload.Result `json:"last_reload,omitempty"`
	Reloads    map[string]int `json:"reloads,omitempty"`
	Healthy    bool           `json:"healthy"`
	// Log is the app's recent output (at most LogHandoverBytes of text),
	// the history `supctl logs` shows after the upgrade. An image that
	// does not read it ignores it.
	Log []logs.Line `json:"log,omitempty"`
}

// FDs lists every descriptor the state refers to: they must stay open (not
// CLOEXEC) across the exec.
func (h *Handover) FDs() []int {
	var fds []int
	for _, socks := range h.Sockets {
		for _, s := range socks {
			fds = append(fds, s.FD)
			fds = append(fds, s.Steer.FDs()...)
			fds = append(fds, s.Rename.FDs()...)
		}
	}
	for _, a := range h.Apps {
		if a.Gen == nil {
			continue
		}
		for _, fd := range []int{a.Gen.OutFD, a.Gen.ErrFD, a.Gen.AccessFD} {
			if fd >= 0 {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}

// Validate checks, without touching any descriptor or process, that an
// image can take over h with cfg: same format version, the same listeners
// per app in the same order, and no running app the configuration lacks.
// It returns every mismatch found, joined.
func (h *Handover) Validate(cfg *config.Config) error {
	if h.Version != HandoverVersion {
		return fmt.Errorf("handover state version %d, this binary speaks %d", h.Version, HandoverVersion)
	}
	var errs []error
	for _, app := range cfg.Apps {
		errs = append(errs, h.matchListeners(app))
	}
	for _, a := range h.Apps {
		if cfg.App(a.Name) == nil && a.Gen != nil {
			errs = append(errs, fmt.Errorf("app %s runs but is not in the configuration", a.Name))
		}
	}
	return errors.Join(errs...)
}

// matchListeners checks that app's handed-over listeners are its configured
// ones, in order.
func (h *Handover) matchListeners(app *config.App) error {
	got := h.Sockets[app.Name]
	if len(got) != len(app.Listen) {
		return fmt.Errorf("app %s: %d listeners handed over, configuration has %d", app.Name, len(got), len(app.Listen))
	}
	var errs []error
	for i, l := range app.Listen {
		if got[i].Raw != l.Raw {
			errs = append(errs, fmt.Errorf("app %s: handed-over listener %s does not match configured %s", app.Name, got[i].Raw, l.Raw))
		}
	}
	return errors.Join(errs...)
}
