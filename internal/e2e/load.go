package e2e

import (
	"context"
	"errors"
	"fmt"
	"github.com/gunisup/supervisor/internal/heyout"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Result counts what a load run saw.
type Result struct {
	Requests int
	// OK are 2xx answers; Non2xx others.
	OK, Non2xx int
	// Refused, Reset, Timeout, OtherErr count transport failures by kind.
	Refused, Reset, Timeout, OtherErr int
	// Bodies counts 2xx answers by body (first line), e.g. "version=2".
	Bodies map[string]int
	// Errors holds up to 20 failure descriptions.
	Errors    []string
	Latencies []time.Duration
}

// Failed is every request that did not get a 2xx answer.
func (r Result) Failed() int { return r.Non2xx + r.Refused + r.Reset + r.Timeout + r.OtherErr }

// Percentile returns the p-th latency percentile (0 < p <= 100).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	l := append([]time.Duration(nil), r.Latencies...)
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	i := int(float64(len(l))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(l) {
		i = len(l) - 1
	}
	return l[i]
}

func (r Result) String() string {
	return fmt.Sprintf("requests=%d ok=%d non2xx=%d refused=%d reset=%d timeout=%d other=%d p50=%s p99=%s bodies=%v",
		r.Requests, r.OK, r.Non2xx, r.Refused, r.Reset, r.Timeout, r.OtherErr, r.Percentile(50), r.Percentile(99), r.Bodies)
}

// Loader sends GET requests from conns goroutines, each on its own
// keep-alive connection, until Stop. Dial is how to reach the server
// (TCP host:port or a Unix socket path).
type Loader struct {
	mu     sync.Mutex
	res    Result
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartLoad starts a loader against http://addr+path (network "tcp" or "unix").
func StartLoad(network, addr, path string, conns int) *Loader {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Loader{cancel: cancel, res: Result{Bodies: map[string]int{}}}
	for i := 0; i < conns; i++ {
		tr := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 1,
		}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer tr.CloseIdleConnections()
			for ctx.Err() == nil {
				l.one(ctx, c, path)
			}
		}()
	}
	return l
}

func (l *Loader) one(ctx context.Context, c *http.Client, path string) {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, "http://load"+path, nil)
	if err != nil {
		return
	}
	start := time.Now()
	resp, err := c.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res.Requests++
	switch {
	case err != nil:
		kind := classify(err)
		switch kind {
		case "refused":
			l.res.Refused++
		case "reset":
			l.res.Reset++
		case "timeout":
			l.res.Timeout++
		default:
			l.res.OtherErr++
		}
		if len(l.res.Errors) < 20 {
			l.res.Errors = append(l.res.Errors, fmt.Sprintf("%s: %s: %v", time.Now().Format("15:04:05.000"), kind, err))
		}
	case resp.StatusCode/100 != 2:
		l.res.Non2xx++
		if len(l.res.Errors) < 20 {
			l.res.Errors = append(l.res.Errors, fmt.Sprintf("%s: status %d: %.200s", time.Now().Format("15:04:05.000"), resp.StatusCode, body))
		}
	default:
		l.res.OK++
		first, _, _ := strings.Cut(string(body), "\n")
		l.res.Bodies[first]++
		l.res.Latencies = append(l.res.Latencies, took)
	}
}

func classify(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

// Snapshot returns the counts so far.
func (l *Loader) Snapshot() Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	r.Bodies = map[string]int{}
	for k, v := range l.res.Bodies {
		r.Bodies[k] = v
	}
	r.Errors = append([]string(nil), l.res.Errors...)
	r.Latencies = append([]time.Duration(nil), l.res.Latencies...)
	return r
}

// Stop ends the load (requests in flight complete) and returns the counts.
func (l *Loader) Stop() Result {
	l.cancel()
	l.wg.Wait()
	return l.Snapshot()
}

// Hey is the outcome of a run of the hey load generator.
type Hey struct {
	heyout.Summary
	Output string
}

// Failed is every request without a 2xx status.
func (h Hey) Failed() int {
	n := 0
	for code, c := range h.Status {
		if code/100 != 2 {
			n += c
		}
	}
	for _, c := range h.Errors {
		n += c
	}
	return n
}

var ()

// RunHey runs hey with args (e.g. "-c", "16", "-z", "10s", url) and parses
// its summary. ctx bounds it.
func RunHey(ctx context.Context, args ...string) (Hey, error) {
	out, err := exec.CommandContext(ctx, "hey", args...).CombinedOutput()
	h := Hey{Summary: heyout.Parse(string(out)), Output: string(out)}
	if err != nil {
		return h, fmt.Errorf("hey %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return h, nil
}
