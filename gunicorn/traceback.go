package gunicorn

import "strings"

// Bounds of a traceback cut from a generation's stderr.
const (
	// tracebackMax bounds a traceback shown for an unexpected exit; without
	// a traceback, the last tracebackPlain stderr lines are shown.
	tracebackMax   = 60
	tracebackPlain = 20
)

// Traceback returns the last Python traceback in stderr that is not
// Gunicorn's own HaltServer (the master's, after a worker failed to boot,
// which says nothing about the app; it is returned only when no other is
// there), from its "Traceback (most recent call last):" line up to the
// next traceback or the end (a longer one keeps that line, "...", and its
// last lines, tracebackMax in all), and its exception line (the first
// unindented line after the header, such as
// "ImportError: No module named 'flask'"). Without a traceback it returns
// the last tracebackPlain lines and no exception.
func Traceback(stderr []string) (tb []string, exception string) {
	var halt []string
	var haltExc string
	end := len(stderr)
	for i := len(stderr) - 1; i >= 0; i-- {
		if !strings.HasPrefix(stderr[i], "Traceback (most recent call last):") {
			continue
		}
		tb, exception = stderr[i:end], exceptionLine(stderr[i+1:end])
		if !strings.HasPrefix(exception, haltServer) {
			return cutTraceback(tb), exception
		}
		if halt == nil {
			halt, haltExc = tb, exception
		}
		end = i
	}
	if halt != nil {
		return cutTraceback(halt), haltExc
	}
	return stderr[max(0, len(stderr)-tracebackPlain):], ""
}

// cutTraceback keeps a traceback longer than tracebackMax lines to its
// header, "...", and its last lines.
func cutTraceback(tb []string) []string {
	if len(tb) > tracebackMax {
		return append([]string{tb[0], "..."}, tb[len(tb)-(tracebackMax-2):]...)
	}
	return tb
}

// haltServer begins the exception line of Gunicorn's HaltServer.
const haltServer = "gunicorn.errors.HaltServer"

// exceptionLine returns the first unindented, non-empty line of lines.
func exceptionLine(lines []string) string {
	for _, l := range lines {
		if l != "" && l[0] != ' ' {
			return l
		}
	}
	return ""
}
