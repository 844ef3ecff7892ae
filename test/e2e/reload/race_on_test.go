//go:build race

package reload

// raceBuild: the harness builds the supervisor with -race too, whose
// runtime keeps metadata for every goroutine that ever ran: its RSS grows
// with reloads although the Go heap does not.
const raceBuild = true
