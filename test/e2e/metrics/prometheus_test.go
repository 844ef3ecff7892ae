package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// prometheusBin is Debian's Prometheus server.
const prometheusBin = "/usr/bin/prometheus"

// prometheusConfig scrapes one target every second.
const prometheusConfig = `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: supervisor
    static_configs:
      - targets: [%q]
`

// prom is a Prometheus server started by a test.
type prom struct {
	t    *testing.T
	Addr string
	cmd  *exec.Cmd
	mark string
	out  *testenv.SyncBuffer
	done chan struct{}
	err  error
}

// freePort binds 127.0.0.1:0, closes it and returns the port: another
// process may take it before Prometheus binds it (startPrometheus retries).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// startPrometheus runs Prometheus scraping target every second, with its
// storage in a temporary directory, and waits until /-/ready answers 200.
// A lost race for the web port is retried with another port. The test's
// cleanup stops it (if Stop was not called) and checks nothing of it is left.
func startPrometheus(t *testing.T, target string) *prom {
	t.Helper()
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Fatalf("prometheus server: %v (Debian package prometheus)", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(prometheusConfig, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		p, retry := tryPrometheus(t, cfg, filepath.Join(dir, fmt.Sprintf("data%d", attempt)))
		if p != nil {
			return p
		}
		if !retry || attempt == 5 {
			t.Fatalf("prometheus did not start after %d attempts", attempt)
		}
	}
}

// tryPrometheus starts one Prometheus; it returns nil and true when the web
// port was taken meanwhile.
func tryPrometheus(t *testing.T, cfg, data string) (*prom, bool) {
	t.Helper()
	key, mark := testenv.MarkEnv(t)
	p := &prom{t: t, Addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), mark: mark, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(prometheusBin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+p.Addr,
		"--log.level=warn",
	)
	p.cmd.Env = append(os.Environ(), key+"="+mark)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		testenv.AssertNoLeftovers(t, mark, 10*time.Second)
	})
	var exited bool
	testenv.WaitFor(t, 60*time.Second, "prometheus /-/ready", func() bool {
		if p.exited() {
			exited = true
			return true
		}
		st, _, err := get(p.Addr, "/-/ready")
		return err == nil && st == http.StatusOK
	})
	if exited {
		out := p.out.String()
		if strings.Contains(out, "address already in use") {
			t.Logf("prometheus lost the race for %s; retrying", p.Addr)
			return nil, true
		}
		t.Fatalf("prometheus exited at start (%v):\n%s", p.err, out)
	}
	return p, false
}

func (p *prom) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits up to 30 s (then SIGKILL); it reports a
// non-zero exit as a test error. Calling it again does nothing.
func (p *prom) Stop() {
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("signal prometheus: %v", err)
	}
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("prometheus exited with %v after SIGTERM:\n%s", p.err, p.out.String())
		}
	case <-timer.C:
		p.t.Errorf("prometheus did not exit within 30 s of SIGTERM; killing")
		_ = p.cmd.Process.Kill() // last resort; Wait below reaps it
		<-p.done
	}
}

// vectorSample is one element of an instant-vector query result.
type vectorSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query through /api/v1/query and returns the vector.
func (p *prom) query(q string) ([]vectorSample, error) {
	st, body, err := get(p.Addr, "/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string         `json:"resultType"`
			Result     []vectorSample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return nil, fmt.Errorf("query %q: status %d: decoding %.300q: %w", q, st, body, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: status %d: %s", q, st, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %q, want vector", q, r.Data.ResultType)
	}
	return r.Data.Result, nil
}
