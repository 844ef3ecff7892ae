// Package supervise keeps the configured apps running: the Manager holds one
// owner per app, and that owner's goroutine alone changes the app's state
// (starting, running, backing off, failed, stopping, stopped) through typed
// messages. It starts, stops and restarts generations in the order after and
// requires give, applies a changed configuration (update), hosts reloads
// (reload orders the steps, supervise supplies spawning, readiness and
// draining), and freezes and restores its state across a self-upgrade or a
// crash of the supervisor.
//
// Contract: every generation is started, re-executed, adopted and tidied
// up after through gen's Spawner (forked and waited for by proc's reaper);
// every wait has a bound and then a kill. What one generation's process is
// (its exit, signals, output, hand-over) lives in gen, what Gunicorn is
// (argv, USR2, tracebacks) in gunicorn, what the configuration says in config,
// how a reload is ordered in reload, how sockets are held and steered in
// listen, what it publishes about each app (state, snapshot, readiness) in
// status, an app's output and its log in logs, where a generation's
// detached processes are found and ended in contain, what a dead
// predecessor left and the record kept for a successor in recovery, and
// how many workers a Gunicorn app runs while it serves in scale (each
// owner starts and stops its app's controller): this package composes them
// and keeps no copy of their facts.
package supervise
