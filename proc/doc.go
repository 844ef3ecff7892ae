// Package proc is the supervisor's view of processes: the Reaper (the only
// caller of wait4, through which every child is started), fork+exec with an
// exact descriptor list, one /proc tree walker (used by supervision and by
// metrics), signalling and ending process trees, and the clean-up of orphans
// left among the supervisor's children.
//
// Contract: no other package waits for a child. A process started anywhere
// in the supervisor is started through Reaper.Start (ForkExec, Output) or
// registered with Reaper.Adopt; its exit arrives exactly once on the channel
// those return. Functions that signal processes treat ESRCH as success.
package proc
