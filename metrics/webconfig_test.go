package metrics

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadWebConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	tlsOK := "tls_server_config:\n  cert_file: cert.pem\n  key_file: " + keyFile + "\n"
	for _, tc := range []struct {
		name, body string
		// wantErr: substrings of the error; none means success.
		wantErr []string
	}{
		{name: "empty", body: "{}\n"},
		{name: "tls and users", body: tlsOK + "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " + certFile +
			"\n  min_version: TLS13\nbasic_auth_users:\n  prometheus: " + basicAuthHash + "\n"},
		{name: "unknown top key", body: "http_server_config:\n  http2: false\n", wantErr: []string{"web.yml", "http_server_config"}},
		{name: "unknown tls key", body: tlsOK + "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n", wantErr: []string{"web.yml", "cipher_suites"}},
		{name: "plain password", body: "basic_auth_users:\n  prometheus: secret\n", wantErr: []string{"web.yml", `"prometheus"`, "bcrypt"}},
		{name: "key without cert", body: "tls_server_config:\n  key_file: " + keyFile + "\n", wantErr: []string{"cert_file and key_file"}},
		{name: "bad client auth", body: tlsOK + "  client_auth_type: Sometimes\n", wantErr: []string{`"Sometimes"`}},
		{name: "bad min version", body: tlsOK + "  min_version: SSL3\n", wantErr: []string{`"SSL3"`}},
		{name: "ca without auth", body: tlsOK + "  client_ca_file: " + certFile + "\n", wantErr: []string{"client_ca_file"}},
		{name: "min version without tls", body: "tls_server_config:\n  min_version: TLS13\n", wantErr: []string{"min_version"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "web.yml")
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := readWebConfig(path)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("readWebConfig: %v", err)
				}
				if c.TLS.enabled() {
					if c.TLS.CertFile != certFile {
						t.Errorf("relative cert_file resolved to %q, want %q", c.TLS.CertFile, certFile)
					}
					cfg, err := c.tlsConfig()
					if err != nil {
						t.Fatalf("tlsConfig: %v", err)
					}
					if cfg.MinVersion != tls.VersionTLS13 || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
						t.Errorf("tls.Config: min version %x, client auth %v, client CAs %v", cfg.MinVersion, cfg.ClientAuth, cfg.ClientCAs != nil)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("readWebConfig accepted %q", tc.body)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestWebConfigMissingCertFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.yml")
	body := "tls_server_config:\n  cert_file: gone.pem\n  key_file: gone.key\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := readWebConfig(path)
	if err != nil {
		t.Fatalf("readWebConfig: %v", err)
	}
	if _, err := c.tlsConfig(); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "gone.pem")) {
		t.Errorf("tlsConfig with a missing cert_file: %v, want an error naming it", err)
	}
}

// basicAuth reads the users for each request: a user added to the file is
// let in without a restart, and one removed is refused.
func TestBasicAuthFollowsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.yml")
	write := func(user string) {
		t.Helper()
		if err := os.WriteFile(path, []byte("basic_auth_users:\n  "+user+": "+basicAuthHash+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	a := &basicAuth{path: path, next: ok, logger: slog.New(slog.DiscardHandler)}
	status := func(user, pass string) int {
		r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		r.SetBasicAuth(user, pass)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r)
		return w.Code
	}
	write("prometheus")
	if got := status("prometheus", "scrape-secret"); got != http.StatusNoContent {
		t.Errorf("listed user: %d, want 204", got)
	}
	if got := status("other", "scrape-secret"); got != http.StatusUnauthorized {
		t.Errorf("unlisted user: %d, want 401", got)
	}
	write("other")
	if got := status("other", "scrape-secret"); got != http.StatusNoContent {
		t.Errorf("user added to the file: %d, want 204", got)
	}
	if got := status("prometheus", "scrape-secret"); got != http.StatusUnauthorized {
		t.Errorf("user removed from the file: %d, want 401", got)
	}
	if err := os.WriteFile(path, []byte("basic_auth_users: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := status("other", "scrape-secret"); got != http.StatusInternalServerError {
		t.Errorf("broken file: %d, want 500", got)
	}
}
