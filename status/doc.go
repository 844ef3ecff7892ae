// Package status holds the state the supervisor publishes about its apps:
// each app's lifecycle State, a consistent copy of one app (AppSnapshot)
// with its held sockets and its kept generation, the readiness computed
// from those copies (Assess), and the Observer that receives reload and
// health-check events.
//
// Contract: these are plain values. supervise's app owners write them (an
// owner alone changes its app's state and takes its snapshot); metrics,
// the control server and the daemon read them and never see the live
// state. The text forms (State's names, the field meanings documented on
// control.AppStatus) are what supctl, /v1 and /metrics show, so a change to
// them is a change a user sees. The package holds no goroutine and no lock.
package status
