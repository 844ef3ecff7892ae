//go:build !race

package reload

// raceBuild: see race_on_test.go.
const raceBuild = false
