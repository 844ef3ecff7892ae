package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// maxMetricsBytes bounds the /v1/metrics answer Client.Metrics reads.
const maxMetricsBytes = 64 << 20

// metrics answers GET /v1/metrics with what the supervisor's /metrics
// serves (Server.Metrics), over the control socket: supctl top reads it
// whether or not the HTTP endpoint is enabled or protected.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.Metrics == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "metrics are not available in this build")
		return
	}
	r.Header.Del("Accept-Encoding") // a local socket: gzip would only cost CPU
	s.Metrics.ServeHTTP(w, r)
}

// Metrics returns the supervisor's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/metrics")
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
