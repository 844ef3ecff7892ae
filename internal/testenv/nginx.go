package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Strings of contrib/nginx/gunisup-site.conf that NginxConf replaces; the
// file promises each appears once.
const (
	nginxSiteSocket = "unix:/run/gunisup/web.sock"
	nginxSiteListen = "listen 80;"
	nginxSiteRoot   = "root /srv/web/current;"
)

// Nginx returns the nginx binary (on PATH, or /usr/sbin/nginx), skipping
// the test when it is not installed (failing it under CI=true).
func Nginx(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return Tool(t, "/usr/sbin/nginx", "nginx")
}

// NginxConf writes dir/nginx.conf: a main configuration (pid, logs and
// temporary files in dir; root as the user when the test is root, as the
// app's socket is owned by root) whose http block includes the site file
// at site (contrib/nginx/gunisup-site.conf) with only its upstream socket
// set to sock, its listen to addr (host:port) and its static root to
// root. It returns the main configuration's path and fails the test when
// the site file lacks one of the strings it replaces or has it twice.
func NginxConf(t testing.TB, site, dir, sock, addr, root string) string {
	t.Helper()
	raw, err := os.ReadFile(site)
	if err != nil {
		t.Fatalf("testenv: nginx site: %v", err)
	}
	text := string(raw)
	for _, r := range [][2]string{
		{nginxSiteSocket, "unix:" + sock},
		{nginxSiteListen, "listen " + addr + ";"},
		{nginxSiteRoot, "root " + root + ";"},
	} {
		if n := strings.Count(text, r[0]); n != 1 {
			t.Fatalf("testenv: %s has %q %d times, want once (the tests replace it)", site, r[0], n)
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	sitePath := filepath.Join(dir, "site.conf")
	if err := os.WriteFile(sitePath, []byte(text), 0o644); err != nil {
		t.Fatalf("testenv: writing nginx site: %v", err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 2;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	include %[3]s;
}
`, user, dir, sitePath)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatalf("testenv: writing nginx.conf: %v", err)
	}
	return path
}
