package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// metricsBackend serves a metrics text naming the Accept-Encoding it got.
type metricsBackend struct{ backend }

func (*metricsBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "supervisor_app_up{app=\"web\"} 1\n# encoding %q\n", r.Header.Get("Accept-Encoding"))
}

// TestMetrics: GET /v1/metrics passes the Metrics handler's answer through,
// uncompressed; without a handler it is unavailable.
func TestMetrics(t *testing.T) {
	_, path := serve(t, &metricsBackend{})
	got, err := NewClient(path).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := "supervisor_app_up{app=\"web\"} 1\n# encoding \"\"\n"; string(got) != want {
		t.Errorf("metrics %q, want %q", got, want)
	}
	_, path = serve(t, &backend{})
	var ae *APIError
	if _, err := NewClient(path).Metrics(context.Background()); !errors.As(err, &ae) || ae.Code != CodeUnavailable {
		t.Errorf("without a handler: %v, want unavailable", err)
	}
}

// TestTopUnavailable: without a Top handler GET /v1/top is unavailable
// (501), which supctl top takes for a supervisor without it (supctl's
// tests serve one).
func TestTopUnavailable(t *testing.T) {
	_, path := serve(t, &metricsBackend{})
	got, err := NewClient(path).Top(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != CodeUnavailable || ae.Status != http.StatusNotImplemented {
		t.Errorf("without a Top handler: %q, %v, want unavailable (501)", got, err)
	}
}
