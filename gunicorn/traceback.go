package gunicorn

import "strings"

// Bounds of a traceback cut from a generation's stderr.
const (
	// tracebackMax bounds a traceback shown for an unexpected exit; without
	// a traceback, the last tracebackPlain stderr lines are shown.
	tracebackMax   = 60
	tracebackPlain = 20
)

// Traceback returns the last Python traceback in stderr (from its
// "Traceback (most recent call last):" line on; a longer one keeps that
// line, "...", and its last lines, tracebackMax in all) and its exception
// line (the first unindented line after the header, such as
// "ImportError: No module named 'flask'"). Without a traceback it returns
// the last tracebackPlain lines and no exception.
func Traceback(stderr []string) (tb []string, exception string) {
	start := -1
	for i := len(stderr) - 1; i >= 0; i-- {
		if strings.HasPrefix(stderr[i], "Traceback (most recent call last):") {
			start = i
			break
		}
	}
	if start < 0 {
		return stderr[max(0, len(stderr)-tracebackPlain):], ""
	}
	tb = stderr[start:]
	for _, l := range tb[1:] {
		if l != "" && l[0] != ' ' {
			exception = l
			break
		}
	}
	if len(tb) > tracebackMax {
		tb = append([]string{tb[0], "..."}, tb[len(tb)-(tracebackMax-2):]...)
	}
	return tb, exception
}
