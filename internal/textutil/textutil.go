// Package textutil holds small text helpers shared by the daemon's packages.
package textutil

import "strings"

// FirstLine returns the first line of b after surrounding whitespace is
// removed, cut to at most 200 bytes: a one-line summary of a command's
// output for an error message.
func FirstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}
