//go:build race

package upgrade

// raceEnabled tells the build helpers to build the supervisor with -race
// when the tests themselves run with it (as internal/e2e does).
const raceEnabled = true
