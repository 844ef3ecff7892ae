//go:build !race

package metrics

// raceEnabled reports whether the tests (and so the binaries e2e builds) run
// with the race detector.
const raceEnabled = false
