package strategy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultCanaryFor is how long each canary step lasts when none is given.
const DefaultCanaryFor = 60 * time.Second

// Canary is a canary reload's plan: the new generation gets Steps[0] of the
// new connections for For, then each next share for For, then all of them
// (the swap's end). Shares are fractions, 0 < s < 1, strictly increasing.
// The zero Canary is no canary.
type Canary struct {
	Steps []float64
	For   time.Duration
}

// On reports whether c asks for a canary.
func (c Canary) On() bool { return len(c.Steps) > 0 }

// String spells c as ParseCanary reads it ("10%,50% for 1m0s"); "" for none.
func (c Canary) String() string {
	if !c.On() {
		return ""
	}
	return fmt.Sprintf("%s for %s", c.Shares(), c.For)
}

// Shares spells c's steps as ParseCanary reads them ("10%,50%").
func (c Canary) Shares() string {
	parts := make([]string, len(c.Steps))
	for i, s := range c.Steps {
		parts[i] = strconv.FormatFloat(100*s, 'f', -1, 64) + "%"
	}
	return strings.Join(parts, ",")
}

// ParseCanary reads a comma-separated list of percentages ("10%",
// "10%,50%"; the % sign may be left out), each above 0 and below 100 and
// each above the one before, with step length every (DefaultCanaryFor when
// 0). "" is no canary. The error names the part at fault.
func ParseCanary(shares string, every time.Duration) (Canary, error) {
	if strings.TrimSpace(shares) == "" {
		return Canary{}, nil
	}
	if every < 0 {
		return Canary{}, fmt.Errorf("canary step length %s: must not be negative", every)
	}
	if every == 0 {
		every = DefaultCanaryFor
	}
	var c Canary
	for _, part := range strings.Split(shares, ",") {
		p := strings.TrimSuffix(strings.TrimSpace(part), "%")
		v, err := strconv.ParseFloat(p, 64)
		if err != nil {
			return Canary{}, fmt.Errorf("canary %q: %q is not a percentage (e.g. 10%%)", shares, part)
		}
		if v <= 0 || v >= 100 {
			return Canary{}, fmt.Errorf("canary %q: %q must be above 0%% and below 100%% (100%% is the full switch that ends every canary)", shares, part)
		}
		if n := len(c.Steps); n > 0 && v/100 <= c.Steps[n-1] {
			return Canary{}, fmt.Errorf("canary %q: %q must be above the step before it", shares, part)
		}
		c.Steps = append(c.Steps, v/100)
	}
	c.For = every
	return c, nil
}

// CanCanary reports whether a reload with s can run as a canary: only a
// strategy that starts a complete new generation beside the serving one
// and then switches (swap) can; the error says why not.
func (s Strategy) CanCanary() error {
	if s == Swap {
		return nil
	}
	return fmt.Errorf("strategy %s cannot run a canary: it does not start a new generation beside the serving one on sockets of its own (use the %s strategy)", s, Swap)
}
