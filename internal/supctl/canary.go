package supctl

import (
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// canaryFlag is reload's and deploy's --canary SHARES [--for DURATION].
type canaryFlag struct {
	shares string
	every  time.Duration
}

// canaryFlags reads --canary and --for from flags, checked as the
// supervisor checks them (strategy.ParseCanary).
func canaryFlags(flags map[string]string) (canaryFlag, error) {
	c := canaryFlag{shares: flags["canary"]}
	if s := flags["for"]; s != "" {
		if c.shares == "" {
			return canaryFlag{}, errors.New("--for needs --canary")
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return canaryFlag{}, fmt.Errorf("--for %q: %w", s, err)
		}
		c.every = d
	}
	if _, err := strategy.ParseCanary(c.shares, c.every); err != nil {
		return canaryFlag{}, fmt.Errorf("--canary: %w", err)
	}
	return c, nil
}
