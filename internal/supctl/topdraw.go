package supctl

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// ANSI sequences of a tty run: cursor home, erase to the end of the line
// and of the screen, and the colors of states.
const (
	ansiHome      = "\x1b[H"
	ansiEraseLine = "\x1b[K"
	ansiEraseDown = "\x1b[J"
	ansiReset     = "\x1b[0m"
)

var stateColors = map[string]string{
	"running":  "\x1b[32m", // green
	"starting": "\x1b[33m", // yellow
	"stopping": "\x1b[33m",
	"backoff":  "\x1b[31m", // red
	"failed":   "\x1b[1;31m",
}

const topHeader = "APP                  STATE       CPU%      RSS  WORKERS  QUEUE   REQ/S    P99  APDEX   ERR%  RESTARTS"

// renderTop appends the table of rows to dst: with o.tty it starts at the
// cursor's home and erases what a longer previous table left; otherwise it
// is plain text without any escape sequence.
func renderTop(dst []byte, rows []topRow, at time.Time, o topOptions) []byte {
	eol := "\n"
	if o.tty {
		dst = append(dst, ansiHome...)
		eol = ansiEraseLine + "\n"
	}
	dst = fmt.Appendf(dst, "supctl top: %d apps at %s, every %s%s", len(rows), at.Format("15:04:05"), o.interval, eol)
	dst = append(dst, topHeader...)
	dst = append(dst, eol...)
	for _, r := range rows {
		state := fmt.Sprintf("%-10s", r.state)
		if c, ok := stateColors[r.state]; ok && o.color {
			state = c + state + ansiReset
		}
		dst = fmt.Appendf(dst, "%-20s %s %5s %8s %8s %6s %7s %6s %6s %6s %9d%s",
			clip(r.name, 20), state, fixed(r.cpu, 1), bytesIEC(r.rss), fixed(r.workers, 0), fixed(r.queue, 0),
			fixed(r.rate, 1), millis(r.p99), fixed(r.apdex, 2), fixed(r.errPct, 1), r.restarts, eol)
	}
	if o.tty {
		dst = append(dst, ansiEraseDown...)
	}
	return dst
}

// clip cuts s to n bytes, marking a cut with "~".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "~"
}

// fixed formats v with prec decimals, "-" for NaN.
func fixed(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// bytesIEC formats a byte count as 12.3M (KiB, MiB, GiB), "-" for NaN.
func bytesIEC(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	units := []string{"B", "K", "M", "G", "T"}
	i := 0
	for ; v >= 1024 && i < len(units)-1; i++ {
		v /= 1024
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// millis formats seconds as milliseconds ("12ms", "1.2s"), "-" for NaN.
func millis(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64) + "s"
	}
	return strconv.FormatFloat(v*1000, 'f', 0, 64) + "ms"
}
