package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// MetricsOf returns the supervisor's metrics narrowed to the families whose
// name starts with one of prefixes and to the series of apps (see
// metrics.Metrics.ScrapeHandler), in the Prometheus text format.
func (c *Client) MetricsOf(ctx context.Context, apps, prefixes []string) ([]byte, error) {
	q := url.Values{"app": apps, "prefix": prefixes}
	resp, err := c.do(ctx, http.MethodGet, "/v1/metrics?"+q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return nil, &ConnectError{Path: c.Path, Err: fmt.Errorf("read metrics: %w", err)}
	}
	return b, nil
}
