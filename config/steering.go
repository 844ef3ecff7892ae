package config

// Steering is how new connections reach an app's generations.
type Steering int

const (
	// SteeringAuto: each generation of a TCP listener gets its own socket,
	// steered by BPF, where the supervisor can load the program (root, Linux
	// 5.14+); otherwise, and for Unix and systemd sockets, one shared socket.
	SteeringAuto Steering = iota
	// SteeringShared: every generation accepts from one shared socket.
	SteeringShared
)

func (s Steering) String() string {
	if s == SteeringShared {
		return "shared"
	}
	return "auto"
}

// appSteering reads the app's `steering` key.
func appSteering(t *table, a *App) {
	var s string
	if !t.str("steering", &s) {
		return
	}
	switch s {
	case "auto":
		a.Steering = SteeringAuto
	case "shared":
		a.Steering = SteeringShared
	default:
		t.errf("steering", "unknown steering %q (want \"auto\" or \"shared\")", s)
	}
}
