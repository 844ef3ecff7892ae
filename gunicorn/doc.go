// Package gunicorn is everything the supervisor knows about Gunicorn: the
// argv and environment of a master started on inherited sockets, pidfile
// naming, the version probe (cached per virtualenv and binary mtime), the
// USR2 dance (finding the new master through "<pidfile>.2", telling when
// its workers have booted the app from their heartbeat files, watching a
// master that is not yet the supervisor's child), the stop of a generation
// that failed its checks, and the Python traceback in a crashed
// generation's stderr.
//
// Contract: nothing here keeps app state or starts a generation; supervise
// composes these pieces into reload's host. Every wait takes a context or a
// bound.
package gunicorn
