//go:build race

package e2e

// RaceEnabled reports whether the tests run with the race detector, and so
// whether the binaries this package builds are built with -race too.
const RaceEnabled = true
