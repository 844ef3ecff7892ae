package listen

// BoundName returns the address a socket descriptor is bound to, as
// Socket.Bound spells it: "127.0.0.1:8000", "[::1]:8000" or a Unix path
// (for a held Unix socket, its hidden name).
func BoundName(fd int) (string, error) { return sockName(fd) }
