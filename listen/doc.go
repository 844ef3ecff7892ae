// Package listen holds the supervisor's listening sockets: it binds TCP and
// Unix sockets (replacing stale socket files, never live ones), adopts
// descriptors inherited from systemd or from the previous image, binds each
// generation's private probe listener, and keeps a Unix socket reachable by
// its configured path while Gunicorn masters come and go (the hold trick:
// the socket is bound at a hidden name beside the path, which is a hard link
// to it; Relink re-creates either name; SignalStop lets one master at a time
// remove the hidden name). It gives generations their own sockets on one
// listener: GenSockets for TCP (BPF, see subpackage steer), UnixGens for a
// Unix path (a rename of a generation's hidden name over the path); both
// satisfy Steering. A Table holds one app's sockets and their steering
// under its own lock: it gives a generation its sockets, serves, releases,
// quiesces, shuts and closes them (OpenTable binds and steers them; Open
// makes an app's table of sockets Held from elsewhere, or binds them). Its
// subpackage sockfile handles socket files, for these sockets and for the
// control API's; sockdiag reads Unix accept queues.
//
// Contract: descriptors are raw and CLOEXEC, never *os.File (whose Fd would
// put the shared socket into blocking mode); users and groups arrive
// resolved in config.Listener; a Socket is safe for concurrent use.
package listen
