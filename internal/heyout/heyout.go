// Package heyout reads the summary the load generator hey prints when it
// ends, for the end-to-end tests and the reload benchmark.
package heyout

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Summary is what hey's summary says: answers by HTTP status, errors by
// message (refused, reset, timeouts...), and latency figures.
type Summary struct {
	// Requests counts every request hey finished: answered or failed.
	Requests int
	Status   map[int]int
	Errors   map[string]int
	// P50 and P99 are latency percentiles; Slowest the longest request.
	P50, P99, Slowest time.Duration
}

var (
	statusLine  = regexp.MustCompile(`^\[(\d{3})\]\s+(\d+) responses`)
	errorLine   = regexp.MustCompile(`^\[(\d+)\]\s+(.+)$`)
	percentLine = regexp.MustCompile(`^(\d+)%+ in ([0-9.]+) secs`)
	slowestLine = regexp.MustCompile(`^Slowest:\s+([0-9.]+) secs`)
)

// Parse reads hey's output; lines it does not know are ignored, so a
// truncated summary gives what it holds.
func Parse(text string) Summary {
	s := Summary{Status: map[int]int{}, Errors: map[string]int{}}
	section := ""
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "Status code distribution"):
			section = "status"
			continue
		case strings.HasPrefix(t, "Error distribution"):
			section = "error"
			continue
		case strings.HasPrefix(t, "Latency distribution"):
			section = "latency"
			continue
		case strings.HasPrefix(t, "Details"), strings.HasPrefix(t, "Response time histogram"):
			section = ""
			continue
		}
		if m := slowestLine.FindStringSubmatch(t); m != nil {
			s.Slowest = seconds(m[1])
		}
		s.add(section, t)
	}
	return s
}

// add reads one line of section into s.
func (s *Summary) add(section, t string) {
	switch section {
	case "status":
		if m := statusLine.FindStringSubmatch(t); m != nil {
			code, _ := strconv.Atoi(m[1]) // \d{3}
			n, _ := strconv.Atoi(m[2])    // \d+
			s.Status[code] += n
			s.Requests += n
		}
	case "error":
		if m := errorLine.FindStringSubmatch(t); m != nil {
			n, _ := strconv.Atoi(m[1]) // \d+
			s.Errors[m[2]] += n
			s.Requests += n
		}
	case "latency":
		if m := percentLine.FindStringSubmatch(t); m != nil {
			switch m[1] {
			case "50":
				s.P50 = seconds(m[2])
			case "99":
				s.P99 = seconds(m[2])
			}
		}
	}
}

// seconds converts hey's "0.0123" (seconds) to a duration.
func seconds(v string) time.Duration {
	f, _ := strconv.ParseFloat(v, 64) // [0-9.]+: at worst 0
	return time.Duration(f * float64(time.Second))
}
