package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gunisup/supervisor/status"
)

// shutdownTimeout bounds how long Serve waits for in-flight scrapes once
// its context ends.
const shutdownTimeout = 5 * time.Second

// readiness is the /readyz body. Apps lists only the apps that are not
// ready, with their state name or "unhealthy".
type readiness struct {
	Ready bool              `json:"ready"`
	Apps  map[string]string `json:"apps,omitempty"`
}

// ScrapeHandler serves the registry in the Prometheus text format: what
// GET /metrics answers, and what the control API's GET /v1/metrics (read by
// `supctl top`) answers. At most 4 full scrapes run at once. With
// ?prefix=P or ?app=A (each repeatable) it serves only the families whose
// name starts with a P and, of them, the series of the apps A (see
// scrapeFilter).
func (m *Metrics) ScrapeHandler() http.Handler {
	full := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{m.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := filterOf(r); ok {
			m.serveFiltered(w, f)
			return
		}
		full.ServeHTTP(w, r)
	})
}

// Handler serves GET (and HEAD) /metrics from the explicit registry,
// /healthz (200 "ok" when live returns nil, else 503 with the error) and
// /readyz (200 {"ready":true} when every required app meant to run runs
// and is healthy, else 503 naming the apps that are not). Other paths get 404, other methods 405.
// A nil live counts as always live.
func (m *Metrics) Handler(live func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.ScrapeHandler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if live != nil {
			if err := live(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, err.Error())
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := m.readiness()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !r.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if err := json.NewEncoder(w).Encode(r); err != nil {
			m.logger.Debug("metrics: write /readyz response", "err", err)
		}
	})
	return mux
}

// readiness is ready when every required app meant to run is running and
// healthy (see status.Assess; vacuously true without such apps).
func (m *Metrics) readiness() readiness {
	a := status.Assess(m.apps.src.Snapshots())
	return readiness{Ready: a.Serving, Apps: a.NotHealthy}
}

// Serve listens on addr (TCP) and serves h until ctx ends, then shuts down
// gracefully. A non-loopback addr is allowed but logged as a warning.
// webConfigFile, when not empty, is a web configuration file in the format
// of Prometheus' exporter-toolkit (TLS, basic auth; the subset webConfig
// describes). It returns nil after a shutdown caused by ctx.
func Serve(ctx context.Context, addr, webConfigFile string, h http.Handler, logger *slog.Logger) error {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %q: %w", addr, err)
	}
	return ServeListener(ctx, l, webConfigFile, h, logger)
}

// ServeListener is Serve on an existing listener (e.g. one bound with port 0
// or passed by systemd socket activation). It closes l before returning.
func ServeListener(ctx context.Context, l net.Listener, webConfigFile string, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	addr := l.Addr().String()
	if !isLoopback(l.Addr()) {
		logger.Warn("metrics endpoint listens beyond loopback; protect it with a web config (TLS, basic auth) or a firewall",
			"address", addr)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	logger.Info("Listening on", "address", addr)
	errc := make(chan error, 1)
	go func() {
		if webConfigFile == "" {
			errc <- srv.Serve(l)
			return
		}
		errc <- serveWebConfig(l, srv, webConfigFile, logger)
	}()

	var serveErr, shutdownErr error
	select {
	case serveErr = <-errc:
		// Serve failed before ctx ended (bad web config, accept error).
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		shutdownErr = srv.Shutdown(sctx)
		cancel()
		serveErr = <-errc
	}
	// serveWebConfig may fail before http.Server.Serve took ownership of l.
	if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		logger.Debug("metrics: close listener", "address", addr, "err", err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("metrics: shut down server on %s: %w", addr, shutdownErr)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve on %s (web config %q): %w", addr, webConfigFile, serveErr)
	}
	return nil
}

// isLoopback reports whether a reaches only this host: a loopback TCP
// address, or a Unix socket.
func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// slogPrinter adapts a slog.Logger to promhttp.Logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error(fmt.Sprint(v...)) }
