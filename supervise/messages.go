package supervise

import (
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/upgrade"
)

// message is one request to an app owner; the owner answers each on its
// reply channel exactly once (buffered: the owner never blocks on it).
type message interface{ replyTo() chan error }

// call carries a message's reply channel.
type call struct{ reply chan error }

func newCall() call { return call{reply: make(chan error, 1)} }

func (c call) replyTo() chan error { return c.reply }

// startMsg asks the app to run; answered once a generation was spawned or
// a start is scheduled.
type startMsg struct{ call }

// stopMsg asks the app to stop; answered once nothing the owner started runs.
// refuse: a stop by request, after which the app's listeners close (see
// appOwner.finishStop).
type stopMsg struct {
	call
	refuse bool
}

// restartMsg asks for a stop and a start; answered when the old generation exited.
type restartMsg struct{ call }

// reloadMsg asks for a reload (release != "": a deploy of that release).
type reloadMsg struct {
	call
	strategy *strategy.Strategy
	release  string
	progress reload.Progress
	// dir is the release a new generation runs in ("": the app's
	// directory, resolved when it starts).
	dir string
	// recovery: the reload replaces a predecessor's orphans (see recoverApp).
	recovery bool
	// canary, when on, runs the reload as a canary (see reload.Canary).
	canary strategy.Canary
	// byUser: a user asked for it (supctl): without canary or strategy,
	// the app's configured canary runs.
	byUser bool
}

// commitMsg asks to make a reload's new generation the tracked one.
type commitMsg struct {
	call
	run *reloadRun
	gen generation
}

// reloadDoneMsg reports the end of a reload.
type reloadDoneMsg struct {
	call
	run    *reloadRun
	result *reload.Result
}

// healthResultMsg reports one periodic health check of gen.
type healthResultMsg struct {
	call
	gen generation
	err error
}

// retiredMsg reports that a generation the owner stopped outside its
// tracking (a restart's old one) has exited.
type retiredMsg struct {
	call
	gen generation
}

// freezeMsg asks the owner to record its state and hold still until thaw.
type freezeMsg struct {
	call
	state *upgrade.AppHandover
	thaw  <-chan struct{}
}

// pingMsg is answered at once: the owner loop is alive.
type pingMsg struct{ call }

// readyMsg reports the end of a start's readiness wait.
type readyMsg struct {
	call
	gen generation
	err error
}

// accountMsg asks for every generation the owner knows of (tests check the
// invariant with it).
type accountMsg struct {
	call
	out *[]generation
}
