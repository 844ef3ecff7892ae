package metrics

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
)

// webConfig is the subset of the Prometheus exporter-toolkit web
// configuration file (web-config.yml) that the metrics endpoint accepts:
// TLS from files and basic auth with bcrypt hashes. Any other key is an
// error naming the file and the key.
type webConfig struct {
	TLS   webTLS            `yaml:"tls_server_config"`
	Users map[string]string `yaml:"basic_auth_users"`
}

// webTLS is tls_server_config. Relative paths are relative to the web
// configuration file's directory.
type webTLS struct {
	CertFile       string `yaml:"cert_file"`
	KeyFile        string `yaml:"key_file"`
	ClientCAFile   string `yaml:"client_ca_file"`
	ClientAuthType string `yaml:"client_auth_type"`
	MinVersion     string `yaml:"min_version"`
}

// enabled reports whether tls_server_config asks for TLS at all.
func (t *webTLS) enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" || t.ClientAuthType != ""
}

var clientAuthTypes = map[string]tls.ClientAuthType{
	"":                           tls.NoClientCert,
	"NoClientCert":               tls.NoClientCert,
	"RequestClientCert":          tls.RequestClientCert,
	"RequireAnyClientCert":       tls.RequireAnyClientCert,
	"RequireClientCert":          tls.RequireAnyClientCert,
	"VerifyClientCertIfGiven":    tls.VerifyClientCertIfGiven,
	"RequireAndVerifyClientCert": tls.RequireAndVerifyClientCert,
}

var tlsVersions = map[string]uint16{
	"":      tls.VersionTLS12,
	"TLS10": tls.VersionTLS10,
	"TLS11": tls.VersionTLS11,
	"TLS12": tls.VersionTLS12,
	"TLS13": tls.VersionTLS13,
}

// readWebConfig reads and checks the web configuration file at path: every
// key known, every password a bcrypt hash, cert_file and key_file both set
// when TLS is asked for, known client_auth_type and min_version, and
// client_ca_file only with a client_auth_type. Errors name path.
func readWebConfig(path string) (*webConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("web config: %w", err)
	}
	var c webConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.ClientCAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &c, nil
}

// CheckWebConfig reads the web configuration file at path as the metrics
// endpoint would at start, including the certificate, key and client CAs it
// names. It returns nil if the endpoint would serve, else an error naming
// the file and the key at fault.
func CheckWebConfig(path string) error {
	c, err := readWebConfig(path)
	if err != nil || !c.TLS.enabled() {
		return err
	}
	_, err = c.tlsConfigAt(path)
	return err
}

// tlsConfigAt is tlsConfig with errors naming path, the web config file.
func (c *webConfig) tlsConfigAt(path string) (*tls.Config, error) {
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("web config %s: %w", path, err)
	}
	return cfg, nil
}

// check validates c without touching the files it names.
func (c *webConfig) check() error {
	for user, hash := range c.Users {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("basic_auth_users: password of %q is not a bcrypt hash: %w", user, err)
		}
	}
	t := &c.TLS
	if !t.enabled() {
		if t.MinVersion != "" {
			return errors.New("tls_server_config: min_version without cert_file and key_file")
		}
		return nil
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return errors.New("tls_server_config: cert_file and key_file are both required")
	}
	auth, ok := clientAuthTypes[t.ClientAuthType]
	if !ok {
		return fmt.Errorf("tls_server_config: client_auth_type %q is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert", t.ClientAuthType)
	}
	if _, ok := tlsVersions[t.MinVersion]; !ok {
		return fmt.Errorf("tls_server_config: min_version %q is not one of TLS10, TLS11, TLS12, TLS13", t.MinVersion)
	}
	if t.ClientCAFile != "" && auth == tls.NoClientCert {
		return errors.New("tls_server_config: client_ca_file needs a client_auth_type that asks for a certificate")
	}
	return nil
}

// tlsConfig loads the certificate, key and client CAs that c names into a
// server configuration serving HTTP/1.1. It returns an error naming the
// key and the file that could not be used; callers add the web config's
// own path (tlsConfigAt).
func (c *webConfig) tlsConfig() (*tls.Config, error) {
	t := &c.TLS
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s, key_file %s: %w", t.CertFile, t.KeyFile, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   clientAuthTypes[t.ClientAuthType],
		MinVersion:   tlsVersions[t.MinVersion],
		NextProtos:   []string{"http/1.1"},
	}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_ca_file: %w", err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", t.ClientCAFile)
		}
	}
	return cfg, nil
}

// serveWebConfig serves h on l as the web configuration file at path asks
// until srv is shut down. The file is read at once (an error is returned
// before serving) and again for each TLS handshake and each request, so
// that a renewed certificate or a changed user list takes effect without a
// restart; a file that became invalid fails the handshake or answers 500,
// and is logged.
func serveWebConfig(l net.Listener, srv *http.Server, path string, logger *slog.Logger) error {
	c, err := readWebConfig(path)
	if err != nil {
		return err
	}
	srv.Handler = &basicAuth{path: path, next: srv.Handler, logger: logger}
	if !c.TLS.enabled() {
		logger.Info("TLS is disabled.", "address", l.Addr().String())
		return srv.Serve(l)
	}
	if _, err := c.tlsConfigAt(path); err != nil {
		return err
	}
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	srv.TLSConfig = &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := readWebConfig(path)
			if err == nil {
				var cfg *tls.Config
				if cfg, err = c.tlsConfigAt(path); err == nil {
					return cfg, nil
				}
			}
			logger.Error("metrics: TLS handshake refused", "err", err)
			return nil, err
		},
	}
	logger.Info("TLS is enabled.", "address", l.Addr().String())
	return srv.ServeTLS(l, "", "")
}

// bcryptCacheSize bounds basicAuth's cache of checked credentials.
const bcryptCacheSize = 100

// unknownUserHash is compared against when the user is unknown, so that an
// unknown user takes as long to refuse as a wrong password (bcrypt of
// "fakepassword", cost 10).
const unknownUserHash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"

// basicAuth passes a request to next when the web configuration at path
// lists no users or the request's basic-auth credentials match one;
// otherwise it answers 401. A bcrypt check costs tens of milliseconds, so
// results are cached by a digest of user, hash and password (at most
// bcryptCacheSize, then the cache starts over) and checks run one at a time.
type basicAuth struct {
	path   string
	next   http.Handler
	logger *slog.Logger

	mu    sync.Mutex // serialises bcrypt checks and guards cache
	cache map[[sha256.Size]byte]bool
}

func (a *basicAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := readWebConfig(a.path)
	if err != nil {
		a.logger.Error("metrics: request refused", "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	if len(c.Users) == 0 {
		a.next.ServeHTTP(w, r)
		return
	}
	if user, pass, ok := r.BasicAuth(); ok && a.check(c.Users, user, pass) {
		a.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("WWW-Authenticate", "Basic")
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}

// check reports whether pass is user's password in users.
func (a *basicAuth) check(users map[string]string, user, pass string) bool {
	hash, known := users[user]
	if !known {
		hash = unknownUserHash
	}
	h := sha256.New()
	for _, s := range []string{user, hash, pass} {
		_, _ = fmt.Fprintf(h, "%d:%s", len(s), s) // a hash.Hash never fails to write
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	a.mu.Lock()
	defer a.mu.Unlock()
	ok, cached := a.cache[key]
	if !cached {
		ok = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
		if a.cache == nil || len(a.cache) >= bcryptCacheSize {
			a.cache = make(map[[sha256.Size]byte]bool)
		}
		a.cache[key] = ok
	}
	return ok && known
}
