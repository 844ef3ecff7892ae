package metrics

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/status"
)

func TestReadyz(t *testing.T) {
	running := func(name string, healthy bool) status.AppSnapshot {
		return status.AppSnapshot{Name: name, State: status.Running, Healthy: healthy, Required: true, Wanted: true, Attempted: true}
	}
	counted := func(s status.AppSnapshot) status.AppSnapshot {
		s.Required, s.Wanted, s.Attempted = true, true, true
		return s
	}
	tests := []struct {
		name   string
		snaps  []status.AppSnapshot
		status int
		body   string
	}{
		{"no apps", nil, http.StatusOK, `{"ready":true}`},
		{"all running and healthy", []status.AppSnapshot{running("web", true), running("api", true)}, http.StatusOK, `{"ready":true}`},
		{
			"starting and unhealthy",
			[]status.AppSnapshot{
				counted(status.AppSnapshot{Name: "web", State: status.Starting}),
				running("api", false),
				running("ok", true),
			},
			http.StatusServiceUnavailable,
			`{"ready":false,"apps":{"api":"unhealthy","web":"starting"}}`,
		},
		{
			"failed and stopped",
			[]status.AppSnapshot{counted(status.AppSnapshot{Name: "a", State: status.Failed}), counted(status.AppSnapshot{Name: "b", State: status.Stopped, Healthy: true})},
			http.StatusServiceUnavailable,
			`{"ready":false,"apps":{"a":"failed","b":"stopped"}}`,
		},
		{
			"stopped on purpose, finished, or not required",
			[]status.AppSnapshot{
				running("web", true),
				{Name: "stopped", State: status.Stopped, Required: true, Attempted: true},
				{Name: "optional", State: status.Failed, Wanted: true, Attempted: true},
			},
			http.StatusOK,
			`{"ready":true}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(&fixedSource{snaps: tc.snaps}, Options{})
			body := scrape(t, m.Handler(nil), "/readyz", tc.status)
			if strings.TrimSpace(body) != tc.body {
				t.Errorf("body %s, want %s", body, tc.body)
			}
		})
	}
}

func TestHandlerRoutes(t *testing.T) {
	var mu sync.Mutex
	var liveErr error
	live := func() error {
		mu.Lock()
		defer mu.Unlock()
		return liveErr
	}
	m := New(&fixedSource{snaps: []status.AppSnapshot{{Name: "web", State: status.Running, Healthy: true}}}, Options{})
	h := m.Handler(live)

	if body := scrape(t, h, "/healthz", http.StatusOK); body != "ok\n" {
		t.Errorf("/healthz body %q, want \"ok\\n\"", body)
	}
	mu.Lock()
	liveErr = errors.New("reaper stalled for 12s")
	mu.Unlock()
	if body := scrape(t, h, "/healthz", http.StatusServiceUnavailable); !strings.Contains(body, "reaper stalled") {
		t.Errorf("/healthz body %q, want the liveness error", body)
	}
	body := scrape(t, h, "/metrics", http.StatusOK)
	for _, want := range []string{"supervisor_app_up{app=\"web\"} 1", "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	scrape(t, h, "/", http.StatusNotFound)
	scrape(t, h, "/metrics/extra", http.StatusNotFound)

	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9321}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 9321}, true},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9321}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9321}, false},
		{&net.UnixAddr{Name: "/run/metrics.sock", Net: "unix"}, true},
	}
	for _, tc := range tests {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// serveResult runs fn in a goroutine and returns a channel with its error.
func serveResult(fn func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- fn() }()
	return c
}

func waitServe(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s")
	}
	return nil
}

func TestServe(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	logger := slog.New(slog.DiscardHandler)

	t.Run("graceful shutdown", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := serveResult(func() error { return Serve(ctx, "127.0.0.1:0", "", m.Handler(nil), logger) })
		cancel()
		if err := waitServe(t, errc); err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	})
	t.Run("bad address", func(t *testing.T) {
		err := Serve(context.Background(), "127.0.0.1:notaport", "", m.Handler(nil), logger)
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:notaport") {
			t.Errorf("Serve on a bad address: %v, want an error naming it", err)
		}
	})
	t.Run("missing web config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "absent.yml")
		err := Serve(context.Background(), "127.0.0.1:0", cfg, m.Handler(nil), logger)
		if err == nil || !strings.Contains(err.Error(), cfg) {
			t.Errorf("Serve with a missing web config: %v, want an error naming it", err)
		}
	})
	t.Run("plain HTTP until cancelled", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := serveResult(func() error { return ServeListener(ctx, l, "", m.Handler(nil), logger) })
		status, body, err := testenv.Get(addr, "/healthz")
		if err != nil || status != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /healthz: %d %q %v", status, body, err)
		}
		cancel()
		if err := waitServe(t, errc); err != nil {
			t.Errorf("ServeListener after cancel: %v", err)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			t.Errorf("%s still accepts after shutdown", addr)
			if err := c.Close(); err != nil {
				t.Error(err)
			}
		}
	})
}

// The bcrypt hash (cost 4) of "scrape-secret".
const basicAuthHash = "$2a$04$upAb5raw85EhBPfq/OqPW.xqkmr1Lh3LBzGMnjXiIECHSGEgW9NDe"

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "supervisor metrics test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLSBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	cfg := filepath.Join(dir, "web.yml")
	webConfig := "tls_server_config:\n  cert_file: " + certFile + "\n  key_file: " + keyFile +
		"\nbasic_auth_users:\n  prometheus: " + basicAuthHash + "\n"
	if err := os.WriteFile(cfg, []byte(webConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + l.Addr().String() + "/metrics"
	m := New(&fixedSource{snaps: []status.AppSnapshot{{Name: "web", State: status.Running}}}, Options{})
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := serveResult(func() error { return ServeListener(ctx, l, cfg, m.Handler(nil), logger) })

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	get := func(user, pass string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s as %q: %v", url, user, err)
		}
		b, err := io.ReadAll(resp.Body)
		if cerr := resp.Body.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if status, _ := get("", ""); status != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", status)
	}
	if status, _ := get("prometheus", "wrong"); status != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", status)
	}
	if status, body := get("prometheus", "scrape-secret"); status != http.StatusOK || !strings.Contains(body, `supervisor_app_up{app="web"} 1`) {
		t.Errorf("right password: %d, body has app_up: %v", status, strings.Contains(body, "supervisor_app_up"))
	}
	cancel()
	if err := waitServe(t, errc); err != nil {
		t.Errorf("ServeListener after cancel: %v", err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "TLS is enabled") {
		t.Errorf("log does not say TLS is enabled:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
