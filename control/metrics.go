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

// top answers GET /v1/top with the Top handler's text (see Server.Top).
func (s *Server) top(w http.ResponseWriter, r *http.Request) {
	if s.Top == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "supctl top's series are not available in this build")
		return
	}
	r.Header.Del("Accept-Encoding") // a local socket: gzip would only cost CPU
	s.Top.ServeHTTP(w, r)
}

// Metrics returns the supervisor's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/v1/metrics")
}

// Top returns the series `supctl top` reads (see Server.Top), in the
// Prometheus text format.
func (c *Client) Top(ctx context.Context) ([]byte, error) {
	return c.text(ctx, "/v1/top")
}

// text GETs path and returns its body, at most maxMetricsBytes.
func (c *Client) text(ctx context.Context, path string) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return nil, &ConnectError{Path: c.Path, Err: fmt.Errorf("read %s: %w", path, err)}
	}
	return b, nil
}
