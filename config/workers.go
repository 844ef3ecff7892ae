package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MinWorkerRSS is the smallest max_worker_rss: a Python worker takes
// tens of MiB before it serves anything, so a lower limit would only
// recycle every worker as soon as it boots.
const MinWorkerRSS = 8 << 20

// workers reads `workers`: an integer (Gunicorn's --workers, a fixed
// count) or a string "MIN..MAX" (the supervisor scales between the two;
// Workers is MIN then, WorkersMax MAX). It reports whether the key is
// present and valid.
func (t *table) workers(a *App) bool {
	v, ok := t.get("workers")
	if !ok {
		return false
	}
	switch v := v.(type) {
	case int64:
		return t.integer("workers", &a.Workers, 0, MaxWorkers)
	case string:
		lo, hi, err := parseWorkerRange(v)
		if err != nil {
			t.errf("workers", "%v", err)
			return false
		}
		a.Workers, a.WorkersMax = lo, hi
		return true
	default:
		t.errf("workers", "want an integer or a range string such as \"2..8\", got %s", typeName(v))
		return false
	}
}

// parseWorkerRange parses "MIN..MAX" with 1 <= MIN < MAX <= MaxWorkers;
// the error says which part is wrong.
func parseWorkerRange(s string) (lo, hi int, err error) {
	a, b, found := strings.Cut(s, "..")
	if !found {
		return 0, 0, fmt.Errorf("invalid range %q: want \"MIN..MAX\" such as \"2..8\" (or an integer for a fixed count)", s)
	}
	if lo, err = strconv.Atoi(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("invalid range %q: MIN %q is not an integer", s, a)
	}
	if hi, err = strconv.Atoi(strings.TrimSpace(b)); err != nil {
		return 0, 0, fmt.Errorf("invalid range %q: MAX %q is not an integer", s, b)
	}
	switch {
	case lo < 1:
		return 0, 0, fmt.Errorf("invalid range %q: MIN must be at least 1 (Gunicorn keeps at least one worker), got %d", s, lo)
	case hi > MaxWorkers:
		return 0, 0, fmt.Errorf("invalid range %q: MAX must be at most %d, got %d", s, MaxWorkers, hi)
	case lo >= hi:
		return 0, 0, fmt.Errorf("invalid range %q: MIN must be below MAX (for a fixed count write workers = %d)", s, lo)
	}
	return lo, hi, nil
}

// byteSize reads a size string such as "300MiB" (units B, KiB, MiB, GiB;
// an integer alone is bytes) of at least lo bytes.
func (t *table) byteSize(name string, dst *int64, lo int64) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.errf(name, "want a size string such as \"300MiB\", got %s", typeName(v))
		return false
	}
	n, err := parseByteSize(s)
	if err != nil {
		t.errf(name, "%v", err)
		return false
	}
	if n < lo {
		t.errf(name, "must be at least %d MiB, got %q", lo>>20, s)
		return false
	}
	*dst = n
	return true
}

// byteUnits are the suffixes parseByteSize accepts, longest first.
var byteUnits = []struct {
	suffix string
	shift  uint
}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}

// parseByteSize parses an integer with an optional binary unit.
func parseByteSize(s string) (int64, error) {
	num, shift := strings.TrimSpace(s), uint(0)
	for _, u := range byteUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: want a whole number of B, KiB, MiB or GiB such as \"300MiB\"", s)
	}
	if n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}
