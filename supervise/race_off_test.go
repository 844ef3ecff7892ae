//go:build !race

package supervise

// raceEnabled: the race detector slows every goroutine switch.
const raceEnabled = false
