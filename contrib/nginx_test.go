package contrib_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// TestNginxSite runs `nginx -t` on the shipped site, included in a main
// configuration as /etc/nginx/nginx.conf includes sites-enabled, with only
// its socket, port and static root replaced (test/e2e/steer runs the same
// file under load).
func TestNginxSite(t *testing.T) {
	bin := testenv.Nginx(t)
	dir := testenv.ShortTempDir(t)
	site := filepath.Join("nginx", "gunisup-site.conf")
	conf := testenv.NginxConf(t, site, dir, filepath.Join(dir, "web.sock"), "127.0.0.1:8080", filepath.Join(dir, "www"))
	out, err := exec.Command(bin, "-p", dir+"/", "-e", dir+"/error.log", "-c", conf, "-t").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t with %s: %v\n%s", site, err, out)
	}
}
