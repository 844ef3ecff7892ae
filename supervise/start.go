package supervise

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// awaitStartMsg asks for the outcome of the app's current start: answered
// nil once the generation counts as started (a process: running after
// start_settle; Gunicorn: ready), or a *StartError once it exits first, is
// not ready within start_timeout, or the app is stopped meanwhile. An app
// already running answers nil at once; one in backoff or failed answers
// the last start's failure.
type awaitStartMsg struct{ call }

// StartError is a start (or a restart's start) that did not count: the
// generation exited before it started, or was not ready in time. Tail is
// the generation's last output lines (stderr included); Exception is the
// exception line of the Python traceback it wrote last ("" for none; see
// gunicorn.Traceback), which Tail may have scrolled past.
type StartError struct {
	App       string
	Reason    string
	Tail      []string
	Exception string
	// gen is the generation that failed; the Manager reads its Tail off
	// the owner's goroutine (reading waits for its output to drain).
	gen generation
}

func (e *StartError) Error() string {
	if e.Exception != "" {
		return fmt.Sprintf("app %s: start failed: %s: %s", e.App, e.Reason, e.Exception)
	}
	return fmt.Sprintf("app %s: start failed: %s", e.App, e.Reason)
}

// startWaitSlack is added to an app's start_timeout and start_settle to
// bound a wait for its start's outcome: the owner answers within those,
// the slack covers a loaded machine.
const startWaitSlack = 5 * time.Second

// startAndWait sends m (a startMsg or restartMsg) to a, then waits for the
// start's outcome (see awaitStartMsg) and fills a StartError's Tail and
// Exception.
func (m *Manager) startAndWait(ctx context.Context, a *appOwner, msg message) error {
	if err := a.send(ctx, msg); err != nil {
		return err
	}
	limit := a.cfg.StartTimeout + a.cfg.StartSettle + startWaitSlack
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := a.send(wctx, awaitStartMsg{newCall()})
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return &StartError{App: a.cfg.Name, Reason: fmt.Sprintf("no outcome within %s", limit)}
	}
	var se *StartError
	if errors.As(err, &se) && se.gen != nil && se.Tail == nil {
		se.Tail = se.gen.Tail()
		_, se.Exception = se.gen.Traceback()
	}
	return err
}

// onAwaitStart answers reply with the current start's outcome, or keeps it
// in startWaiters until onReady, onExit or onStop decides it.
func (a *appOwner) onAwaitStart(reply chan error) {
	switch {
	case a.state == status.Running:
		reply <- nil
	case a.state == status.Starting || (a.state == status.Stopping && a.thenStart):
		a.startWaiters = append(a.startWaiters, reply)
	case a.state == status.Stopping:
		reply <- &StartError{App: a.cfg.Name, Reason: "stopped before its start settled"}
	default:
		reply <- a.lastStartResult()
	}
}

// lastStartResult is the outcome of a start that already ended without the
// app running (Stopped, Backoff, Failed): nil for a one-shot that finished
// with status 0, else the last exit and the owner's message.
func (a *appOwner) lastStartResult() error {
	if a.state == status.Stopped && a.lastExit != nil && a.lastExit.Code == 0 && a.lastExit.Signal == 0 {
		return nil
	}
	reason := "not running (" + a.state.String() + ")"
	if a.lastExit != nil {
		reason = "exited: " + a.lastExit.String()
	}
	if a.message != "" && (a.lastExit == nil || !strings.Contains(a.message, a.lastExit.String())) {
		reason += "; " + a.message
	}
	return &StartError{App: a.cfg.Name, Reason: reason, gen: a.exitedGen}
}

// answerStart answers every start waiter with err (nil: started).
func (a *appOwner) answerStart(err error) {
	answer(a.startWaiters, err)
	a.startWaiters = nil
}

// startExited answers the start waiters after the tracked generation g
// exited while starting: a failed start, unless the restart policy finished
// the app after a clean exit.
func (a *appOwner) startExited(g generation, info proc.ExitInfo) {
	if len(a.startWaiters) == 0 {
		return
	}
	if a.state == status.Stopped && info.Code == 0 && info.Signal == 0 {
		a.answerStart(nil)
		return
	}
	reason := "exited before it was ready: " + info.String()
	if a.cfg.Kind == config.KindProcess {
		reason = fmt.Sprintf("exited before start_settle (%s) passed: %s", a.cfg.StartSettle, info)
	}
	a.answerStart(&StartError{App: a.cfg.Name, Reason: reason, gen: g})
}
