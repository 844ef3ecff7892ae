package control

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// Query parameters of the reload and deploy verbs that ask for a canary:
// canary=10%,50% (the shares of new connections, see
// strategy.ParseCanary) and canary_for=60s (each step's length).
const (
	QueryCanary    = "canary"
	QueryCanaryFor = "canary_for"
)

// canaryKey is the context key of a requested canary plan.
type canaryKey struct{}

// CanaryOf returns the canary plan a reload or deploy request asked for
// (the Backend reads it from the ctx it is given), false for none.
func CanaryOf(ctx context.Context) (strategy.Canary, bool) {
	p, ok := ctx.Value(canaryKey{}).(strategy.Canary)
	return p, ok && p.On()
}

// canaryQuery reads a request's canary parameters into ctx; the error
// names the parameter at fault.
func canaryQuery(ctx context.Context, q url.Values) (context.Context, error) {
	shares, every := q.Get(QueryCanary), time.Duration(0)
	if s := q.Get(QueryCanaryFor); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return ctx, fmt.Errorf("%s=%q: %w", QueryCanaryFor, s, err)
		}
		if shares == "" {
			return ctx, fmt.Errorf("%s needs %s", QueryCanaryFor, QueryCanary)
		}
		every = d
	}
	plan, err := strategy.ParseCanary(shares, every)
	if err != nil {
		return ctx, err
	}
	if !plan.On() {
		return ctx, nil
	}
	return context.WithValue(ctx, canaryKey{}, plan), nil
}
