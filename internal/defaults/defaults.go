// Package defaults holds the values the supervisor and supctl must agree on
// without linking each other's code. It imports nothing.
package defaults

// ControlSocket is the control API's socket path when the configuration
// sets no control_socket and supctl is given neither -s nor $SUPCTL_SOCKET.
const ControlSocket = "/run/gunisup/control.sock"
