package supctl

import (
	"bytes"
	"math"
	"strconv"
	"strings"
)

// sample is one line of the Prometheus text format: a metric name, its
// labels and its value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// eachSample calls fn for every sample line of text (comments, blank and
// malformed lines skipped), in order. fn's sample is valid only during the
// call (its labels map is reused).
func eachSample(text []byte, fn func(*sample)) {
	s := &sample{labels: map[string]string{}}
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if parseSample(string(line), s) {
			fn(s)
		}
	}
}

// parseSample reads `name{k="v",...} value [timestamp]` into s; false for
// a line it does not understand.
func parseSample(line string, s *sample) bool {
	clear(s.labels)
	end := strings.IndexAny(line, "{ ")
	if end <= 0 {
		return false
	}
	s.name = line[:end]
	rest := line[end:]
	if rest[0] == '{' {
		var ok bool
		if rest, ok = parseLabels(rest[1:], s.labels); !ok {
			return false
		}
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return false
	}
	s.value = v
	return true
}

// parseLabels reads `k="v",...}` (after the opening brace) into labels and
// returns what follows the closing brace.
func parseLabels(rest string, labels map[string]string) (string, bool) {
	for {
		rest = strings.TrimLeft(rest, " ,")
		if strings.HasPrefix(rest, "}") {
			return rest[1:], true
		}
		eq := strings.Index(rest, `="`)
		if eq <= 0 {
			return "", false
		}
		key := rest[:eq]
		rest = rest[eq+2:]
		var b strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				i++
				c = map[byte]byte{'n': '\n', '\\': '\\', '"': '"'}[rest[i]]
			}
			b.WriteByte(c)
		}
		if i >= len(rest) {
			return "", false
		}
		labels[key] = b.String()
		rest = rest[i+1:]
	}
}

// bucket is one cumulative histogram bucket: the count of observations at
// most le.
type bucket struct {
	le    float64
	count float64
}

// quantile estimates the q-quantile (0 < q < 1) of the observations that
// the cumulative buckets (sorted by le, +Inf last) count, interpolating
// linearly within a bucket as Prometheus's histogram_quantile does. It
// returns NaN without observations; the highest finite bound when the
// quantile falls in the +Inf bucket.
func quantile(q float64, buckets []bucket) float64 {
	if len(buckets) == 0 || buckets[len(buckets)-1].count <= 0 {
		return math.NaN()
	}
	rank := q * buckets[len(buckets)-1].count
	lowerLE, lowerCount := 0.0, 0.0
	for _, b := range buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lowerLE
			}
			if b.count == lowerCount {
				return b.le
			}
			return lowerLE + (b.le-lowerLE)*(rank-lowerCount)/(b.count-lowerCount)
		}
		lowerLE, lowerCount = b.le, b.count
	}
	return lowerLE
}
