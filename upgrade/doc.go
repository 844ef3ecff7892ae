// Package upgrade is the supervisor's self-upgrade, kept in one place as
// cloudflare/tableflip keeps it: the hand-over state (held sockets, running
// generations with everything needed to keep reloading them the same way,
// statsd sockets, the notify state), its transport through a memfd named by
// an environment variable, the checks a new binary must pass before anything
// is touched (it runs, speaks this state's version, and accepts the state in
// a dry run), the exec that keeps the handed-over descriptors open, and the
// fallback to the previous binary when the new image cannot take over.
//
// Contract: upgrade never imports supervise. supervise produces a Handover
// (Manager.Freeze) and takes one back (Options.Restore; Handover.HeldSockets
// and Held give its sockets back as listen.Held); the daemon drives
// the sequence and owns the decision to exec.
package upgrade
