package supervise

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/reload"
)

// Rollback puts app name's previous release back in service. While a
// swap's previous generation is kept (keep_previous), the app's new
// connections are steered back to it (one steering update per listener),
// the newer generation is drained and stopped in the background, and the
// app's directory link (if any) points at the kept generation's release
// again. Otherwise the newest remembered release other than the serving
// one (see recovery.AppRun.Releases) is deployed as Deploy does: gated,
// the link pointed back on failure. The errors are Deploy's, ErrBusy or
// ErrNotRunning, or one saying that no previous release is remembered.
func (m *Manager) Rollback(ctx context.Context, name string, progress reload.Progress) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(string) {}
	}
	var done RollbackDone
	err = a.send(ctx, rollbackMsg{call: newCall(), asked: time.Now(), out: &done})
	switch {
	case err == nil:
		progress(fmt.Sprintf("steered new connections back to %s in %.2f ms", done.To, float64(done.Flip.Microseconds())/1000))
		m.pointLinkBack(a, done.Release, progress)
		progress(fmt.Sprintf("draining %s", done.Drained))
		return nil
	case !errors.Is(err, ErrNothingKept):
		return err
	}
	current := a.snap.Load().Release
	prev := ""
	if f := m.factsOf(name); f != nil {
		prev = f.Previous(current)
	}
	if prev == "" {
		return fmt.Errorf("app %s: rollback: %w, and no release before %s is remembered", name, ErrNothingKept, current)
	}
	progress(fmt.Sprintf("%s; deploying the previous release %s", ErrNothingKept, prev))
	return m.Deploy(ctx, name, prev, nil, progress)
}

// pointLinkBack points app a's directory link at release, the one its
// serving generation runs in after a rollback, when the link points
// elsewhere (a deploy moved it); a failure is reported, not returned: the
// rollback itself is done.
func (m *Manager) pointLinkBack(a *appOwner, release string, progress reload.Progress) {
	link := a.cfg.Directory
	if link == "" || release == "" {
		return
	}
	if _, err := reload.ReadLink(link); err != nil {
		return // not a link: nothing moved it
	}
	if target, err := reload.ResolveDir(link); err == nil && target == release {
		return
	}
	prev, err := reload.PointLink(link, release)
	if err != nil {
		progress(fmt.Sprintf("warning: pointing %s back at %s: %v", link, release, err))
		m.logger.Warn("rollback: pointing the release link back", "app", a.cfg.Name, "err", err)
		return
	}
	progress(fmt.Sprintf("pointed %s at %s (was %s)", link, release, prev))
	m.recordNow(a.cfg.Name)
}
