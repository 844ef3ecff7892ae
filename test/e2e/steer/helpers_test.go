package steer

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// appConfig is one Gunicorn app with two workers on listener spec, a
// `current` symlink as its directory, and the gate of the traffic-gate
// issue: healthy_after = 3 through the probe listener.
func appConfig(spec string) string {
	return e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{
		Directory: "@DIR@/srv/current",
		Listen:    []string{spec},
		Extra:     e2e.WebGatedSwap,
	}}}.String()
}

// app is a running supervisor serving "web" from a release tree.
type app struct {
	*e2e.Supervisor
	Current string
	Dirs    []string
	// Sock is the Unix socket path ("" for a TCP listener); Addr the
	// address clients use (nginx's, or the TCP listener's).
	Sock, Addr string
}

// startApp starts the supervisor with web listening on listen ("unix" or
// "tcp") and waits until it serves the first release. Every release's
// app.py appends the time each worker finished importing it to a file
// "booted" in its directory (see bootTimes).
func startApp(t *testing.T, listen string, releases []testenv.Release) *app {
	t.Helper()
	return startAppWrapped(t, listen, releases, nil)
}

// startAppWrapped is startApp with the supervisor's command prefixed by
// wrap (see e2e.Options.Wrap).
func startAppWrapped(t *testing.T, listen string, releases []testenv.Release, wrap []string) *app {
	t.Helper()
	a := &app{}
	spec := "tcp://127.0.0.1:0"
	if listen == "unix" {
		spec = "unix://@DIR@/web.sock"
	}
	a.Supervisor = e2e.Start(t, e2e.Options{
		Config: appConfig(spec),
		Wrap:   wrap,
		Setup: func(dir string) {
			root := filepath.Join(dir, "srv")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			a.Current, a.Dirs = testenv.MakeReleaseTree(t, root, releases...)
			for _, d := range a.Dirs {
				markBoot(t, d)
			}
		},
	})
	a.WaitState("web", control.StateRunning, 60*time.Second)
	if listen == "unix" {
		a.Sock = filepath.Join(a.Dir, "web.sock")
	} else {
		a.Addr = a.Supervisor.Addr("web")
	}
	return a
}

// markBoot makes dir/app.py record when each worker finished importing it.
func markBoot(t *testing.T, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "app.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := "\nwith open(os.path.join(os.path.dirname(os.path.abspath(__file__)), \"booted\"), \"a\") as _f:\n    _f.write(\"%.6f\\n\" % time.time())\n"
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}

// bootTimes returns when the workers of release i finished importing it,
// in order (empty: none did).
func (a *app) bootTimes(i int) []time.Time {
	b, err := os.ReadFile(filepath.Join(a.Dirs[i], "booted"))
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, f := range strings.Fields(string(b)) {
		if s, err := strconv.ParseFloat(f, 64); err == nil {
			out = append(out, time.Unix(0, int64(s*1e9)))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// phaseTime returns when the supervisor logged the reload phase matching
// re after since (its log's own timestamp), or the zero time.
func (a *app) phaseTime(re *regexp.Regexp, since time.Time) time.Time {
	for _, line := range strings.Split(a.Output(), "\n") {
		if !strings.Contains(line, "msg=reload") || !re.MatchString(line) {
			continue
		}
		m := logTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err == nil && !at.Before(since) {
			return at
		}
	}
	return time.Time{}
}

var logTime = regexp.MustCompile(`time=(\S+)`)

// reload points current at release i and runs `supctl reload web`.
func (a *app) reload(t *testing.T, i int) (time.Time, e2e.CtlResult) {
	t.Helper()
	testenv.PointCurrent(t, a.Current, a.Dirs[i])
	start := time.Now()
	return start, a.CtlAsync("reload", "web").Wait(t, 90*time.Second)
}

// nginx is an nginx master run in the foreground by a test.
type nginx struct {
	cmd  *exec.Cmd
	Addr string
	done chan struct{}
	out  *testenv.SyncBuffer
}

// siteConf is the nginx site the project ships; the test runs it as is,
// with only its socket, port and static root replaced.
const siteConf = "../../../contrib/nginx/gunisup-site.conf"

// startNginx checks (nginx -t) and runs the shipped site (siteConf) on a
// free port of 127.0.0.1, proxying to the Unix socket sock and serving
// /static/ from a directory holding staticFiles, and waits until it
// answers 200. The test's cleanup stops it (QUIT, KILL after 10 s).
func startNginx(t *testing.T, sock string) *nginx {
	t.Helper()
	bin := testenv.Nginx(t)
	dir := testenv.ShortTempDir(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(filepath.Join(root, "static"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range staticFiles {
		if err := os.WriteFile(filepath.Join(root, "static", f), []byte(f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := testenv.NginxConf(t, siteConf, dir, sock, addr, root)
	args := []string{"-p", dir + "/", "-e", dir + "/error.log", "-c", path}
	if out, err := exec.Command(bin, append(args, "-t")...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t with %s: %v\n%s", siteConf, err, out)
	}
	n := &nginx{Addr: addr, done: make(chan struct{}), out: &testenv.SyncBuffer{}}
	n.cmd = exec.Command(bin, append(args, "-g", "daemon off;")...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	go func() {
		_ = n.cmd.Wait() // the exit matters only as the end of the process
		close(n.done)
	}()
	t.Cleanup(func() { n.stop(t) })
	testenv.WaitFor(t, 20*time.Second, "nginx answering 200 from the app", func() bool {
		st, _, err := testenv.Get(addr, "/")
		return err == nil && st == 200
	})
	return n
}

// staticFiles are written under the static root: a content-hashed name
// (cached for good) and a plain one.
var staticFiles = []string{"app.3f2a9c1b5e4d.css", "robots.txt"}

// checkStatic fetches each of staticFiles through nginx and checks the
// site's caching: an Expires at least five years ahead for the hashed
// name, at most an hour ahead for the plain one.
func (n *nginx) checkStatic(t *testing.T) {
	t.Helper()
	for _, f := range staticFiles {
		resp, err := http.Get("http://" + n.Addr + "/static/" + f)
		if err != nil {
			t.Errorf("GET /static/%s: %v", f, err)
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != f+"\n" {
			t.Errorf("GET /static/%s: %d %q (%v), want 200 and the file", f, resp.StatusCode, body, err)
			continue
		}
		expires, err := http.ParseTime(resp.Header.Get("Expires"))
		if err != nil {
			t.Errorf("GET /static/%s: Expires %q: %v", f, resp.Header.Get("Expires"), err)
			continue
		}
		ahead := time.Until(expires)
		hashed := strings.Contains(f, ".3f2a9c1b5e4d.")
		t.Logf("/static/%s: Expires %s (%v ahead)", f, resp.Header.Get("Expires"), ahead.Round(time.Minute))
		if hashed && ahead < 5*365*24*time.Hour || !hashed && ahead > time.Hour {
			t.Errorf("/static/%s: Expires %v ahead, want far future only for a content-hashed name", f, ahead.Round(time.Minute))
		}
	}
}

// stop ends nginx gracefully (QUIT), KILLing it after 10 s.
func (n *nginx) stop(t *testing.T) {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT) // it may have exited already
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill() // it ignored QUIT; the test goes on
		<-n.done
		t.Errorf("nginx ignored QUIT for 10 s:\n%s", n.out.String())
	}
}

// startHey runs `hey -c 16 -z d http://addr/` in the background; the
// channel gets its summary.
func startHey(t *testing.T, addr string, d time.Duration) <-chan e2e.Hey {
	t.Helper()
	if _, err := exec.LookPath("hey"); err != nil {
		t.Skip("hey is not installed (scripts/deps.sh test installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	t.Cleanup(cancel)
	out := make(chan e2e.Hey, 1)
	go func() {
		h, err := e2e.RunHey(ctx, "-c", "16", "-z", d.String(), "http://"+addr+"/")
		if err != nil {
			h.Output += "\n" + err.Error()
		}
		out <- h
	}()
	return out
}

// checkHey fails the test on any non-2xx answer or socket error hey saw,
// or on fewer than min requests.
func checkHey(t *testing.T, what string, h e2e.Hey, min int) {
	t.Helper()
	t.Logf("%s: hey -c 16: %d responses, %d failed: status %v, errors %v, p50 %v p99 %v",
		what, h.Requests, h.Failed(), h.Status, h.Errors, h.P50, h.P99)
	if h.Requests < min || h.Failed() > 0 {
		t.Errorf("%s: %d of %d requests failed (want none of at least %d):\n%s", what, h.Failed(), h.Requests, min, h.Output)
	}
}

// checkCleanStop stops the supervisor and checks that it and every
// Gunicorn master exited 0 (none failing on its socket's name) and that
// no socket name is left in its directory.
func (a *app) checkCleanStop(t *testing.T) {
	t.Helper()
	if code := a.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("supervisor exit %d, want 0", code)
	}
	out := a.Output()
	if strings.Contains(out, "FileNotFoundError") {
		t.Errorf("a Gunicorn master failed to remove its socket's name:\n%s", out)
	}
	for _, line := range regexp.MustCompile(`msg=exited app=web .*`).FindAllString(out, -1) {
		if !strings.Contains(line, `status="exit 0"`) {
			t.Errorf("web master did not exit 0: %s", line)
		}
	}
	entries, err := os.ReadDir(a.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), "web.sock") {
			t.Errorf("%s left in %s after shutdown", e.Name(), a.Dir)
		}
	}
}
