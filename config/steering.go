package config

// Steering is how new connections reach an app's generations.
type Steering int

const (
	// SteeringAuto: each generation of a TCP listener gets its own socket,
	// steered by BPF, where the supervisor can load the program (root, Linux
	// 5.14+); a reload's generation of a Unix listener gets its own socket,
	// switched to by rename; systemd sockets, and TCP ones without BPF, are
	// one shared socket.
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

// readSteering reads the `steering` key of t (an app, or [supervisor] for
// the apps' default) into s, which keeps its value when the key is absent.
func readSteering(t *table, s *Steering) {
	var v string
	if !t.str("steering", &v) {
		return
	}
	switch v {
	case "auto":
		*s = SteeringAuto
	case "shared":
		*s = SteeringShared
	default:
		t.errf("steering", "unknown steering %q (want \"auto\" or \"shared\")", v)
	}
}
