// Command reloadbench measures code reloads under load for bench/reload.sh.
//
//	reloadbench freeport
//	    print a TCP port on 127.0.0.1 that was free a moment ago
//	reloadbench run -label L -url URL -n N [-c 32] [-z 10m] [-settle 1s]
//	                [-prepare CMD] -reload CMD [-want 'version=v{i}'] -out FILE
//	    run `hey -c C -z Z URL`; meanwhile N times: run PREPARE and then
//	    RELOAD with I=i in the environment (sh -c), time RELOAD, and poll URL
//	    on fresh connections from RELOAD's start until the body is WANT
//	    ({i} replaced). Then stop hey with SIGINT (it prints its summary),
//	    and append one JSON line with the counts and timings to FILE.
//	reloadbench wait URL BODY TIMEOUT
//	    poll URL on fresh connections until the body is BODY
//	reloadbench table FILE
//	    print the JSON lines of FILE as one table, a column per run
//
// Exit status: 0 ok, 1 a run failed (a reload command failed or the new
// version never came), 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/gunisup/supervisor/internal/heyout"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one run, as written to the results file.
type Result struct {
	Label    string  `json:"label"`
	Reloads  int     `json:"reloads"`
	Wall     float64 `json:"wall_s"`
	Requests int     `json:"requests"`
	OK       int     `json:"ok"`
	Non2xx   int     `json:"non2xx"`
	Refused  int     `json:"refused"`
	Reset    int     `json:"reset"`
	Other    int     `json:"other"`
	// Command is each reload command's wall time (s).
	Command []float64 `json:"command_s"`
	// NewVersion is the time from the reload command's start until a fresh
	// connection got the new body (s).
	NewVersion []float64 `json:"new_version_s"`
	P50        float64   `json:"p50_s"`
	P99        float64   `json:"p99_s"`
	Slowest    float64   `json:"slowest_s"`
	Errors     []string  `json:"errors,omitempty"`
	Failures   []string  `json:"failures,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "reloadbench:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("usage: reloadbench freeport | run ... | table FILE")}
	}
	switch args[0] {
	case "freeport":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("freeport: %w", err)
		}
		defer l.Close()
		_, err = fmt.Fprintln(out, l.Addr().(*net.TCPAddr).Port)
		return err
	case "run":
		return runBench(args[1:], out)
	case "wait":
		if len(args) != 4 {
			return usageError{errors.New("usage: reloadbench wait URL BODY TIMEOUT")}
		}
		d, err := time.ParseDuration(args[3])
		if err != nil {
			return usageError{fmt.Errorf("wait: timeout %q: %w", args[3], err)}
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if pollFor(ctx, args[1], args[2], time.Now()) < 0 {
			return fmt.Errorf("wait: %s did not answer %q within %s", args[1], args[2], d)
		}
		return nil
	case "table":
		if len(args) != 2 {
			return usageError{errors.New("usage: reloadbench table FILE")}
		}
		return table(args[1], out)
	}
	return usageError{fmt.Errorf("unknown command %q", args[0])}
}

// runOpts are the flags of `reloadbench run`.
type runOpts struct {
	label, url, dur, prepare, reload, want, outFile string
	n, conns                                        int
	settle                                          time.Duration
}

func parseRun(args []string) (runOpts, error) {
	var o runOpts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&o.label, "label", "", "column title")
	fs.StringVar(&o.url, "url", "", "URL to load and poll")
	fs.IntVar(&o.n, "n", 10, "reloads")
	fs.IntVar(&o.conns, "c", 32, "hey connections")
	fs.StringVar(&o.dur, "z", "10m", "hey -z (an upper bound: hey is stopped after the reloads)")
	fs.DurationVar(&o.settle, "settle", time.Second, "load before the first reload, between reloads and after the last")
	fs.StringVar(&o.prepare, "prepare", "", "shell command before each reload (I=index)")
	fs.StringVar(&o.reload, "reload", "", "shell command that reloads (I=index)")
	fs.StringVar(&o.want, "want", "version=v{i}", "body of the new version ({i} = index)")
	fs.StringVar(&o.outFile, "out", "", "results file (JSON lines, appended)")
	if err := fs.Parse(args); err != nil {
		return o, usageError{err}
	}
	if o.url == "" || o.reload == "" || o.outFile == "" {
		return o, usageError{errors.New("run needs -url, -reload and -out")}
	}
	return o, nil
}

// heyRun is a hey load generator running in the background.
type heyRun struct {
	cmd  *exec.Cmd
	out  strings.Builder
	done chan error
}

func startHey(conns int, dur, url string) (*heyRun, error) {
	h := &heyRun{cmd: exec.Command("hey", "-c", strconv.Itoa(conns), "-z", dur, url), done: make(chan error, 1)}
	h.cmd.Stdout = &h.out
	h.cmd.Stderr = &h.out
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start hey: %w", err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	return h, nil
}

// stop interrupts hey so that it prints its summary; it kills hey if it has
// not exited 60 s later.
func (h *heyRun) stop() error {
	if err := h.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("interrupt hey: %w", err)
	}
	select {
	case err := <-h.done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return fmt.Errorf("hey: %w", err)
		}
		return nil
	case <-time.After(60 * time.Second):
		_ = h.cmd.Process.Kill() // hey ignored SIGINT: its summary is lost either way
		<-h.done
		return errors.New("hey did not stop within 60 s of SIGINT")
	}
}

// reloadOnce runs reload i and records how long the command took and when
// the new version was first served; it returns false when the run must end.
func reloadOnce(o runOpts, i int, res *Result) bool {
	env := append(os.Environ(), "I="+strconv.Itoa(i))
	if o.prepare != "" {
		if b, err := shell(o.prepare, env); err != nil {
			res.Failures = append(res.Failures, fmt.Sprintf("prepare %d: %v: %s", i, err, b))
			return false
		}
	}
	body := strings.ReplaceAll(o.want, "{i}", strconv.Itoa(i))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	seen := make(chan time.Duration, 1)
	t0 := time.Now()
	go func() { seen <- pollFor(ctx, o.url, body, t0) }()
	b, err := shell(o.reload, env)
	took := time.Since(t0)
	res.Command = append(res.Command, took.Seconds())
	if err != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("reload %d: %v: %s", i, err, b))
	}
	nv := <-seen
	if nv < 0 {
		res.Failures = append(res.Failures, fmt.Sprintf("reload %d: %q not served within 120 s", i, body))
		return false
	}
	res.NewVersion = append(res.NewVersion, nv.Seconds())
	fmt.Fprintf(os.Stderr, "%s: reload %d: command %.3fs, new version after %.3fs\n", o.label, i, took.Seconds(), nv.Seconds())
	return true
}

func runBench(args []string, out io.Writer) error {
	o, err := parseRun(args)
	if err != nil {
		return err
	}
	res := Result{Label: o.label, Reloads: o.n}
	start := time.Now()
	hey, err := startHey(o.conns, o.dur, o.url)
	if err != nil {
		return err
	}
	// Pacing, not synchronisation: load reaches a steady state first, and
	// each old generation drains under load before the next reload.
	time.Sleep(o.settle)
	for i := 1; i <= o.n && reloadOnce(o, i, &res); i++ {
		time.Sleep(o.settle)
	}
	if err := hey.stop(); err != nil {
		res.Failures = append(res.Failures, err.Error())
	}
	res.Wall = time.Since(start).Seconds()
	parseHey(hey.out.String(), &res)
	if err := appendResult(o.outFile, res); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d requests, %d failed (refused %d, reset %d, non-2xx %d, other %d)\n",
		res.Label, res.Requests, res.Non2xx+res.Refused+res.Reset+res.Other, res.Refused, res.Reset, res.Non2xx, res.Other)
	if len(res.Failures) > 0 {
		return fmt.Errorf("%s: %s", res.Label, strings.Join(res.Failures, "; "))
	}
	return nil
}

// appendResult appends res as one JSON line to path.
func appendResult(path string, res Result) (err error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	if err := json.NewEncoder(f).Encode(res); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// shell runs cmd with sh -c and returns its combined output.
func shell(cmd string, env []string) ([]byte, error) {
	c := exec.Command("/bin/sh", "-c", cmd)
	c.Env = env
	return c.CombinedOutput()
}

// pollFor GETs url on a fresh connection every 5 ms until the body is want
// and returns the time since t0, or -1 when ctx ends first.
func pollFor(ctx context.Context, url, want string, t0 time.Time) time.Duration {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return -1
		}
		if resp, err := c.Do(req); err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == 200 && strings.TrimSpace(string(b)) == want {
				return time.Since(t0)
			}
		}
		select {
		case <-ctx.Done():
			return -1
		case <-tick.C:
		}
	}
}

// parseHey reads hey's summary into res: answers 2xx or not, errors by
// kind (refused; reset, EOF or broken pipe; other), the first ten error
// lines, and latency figures in seconds.
func parseHey(text string, res *Result) {
	h := heyout.Parse(text)
	res.Requests = h.Requests
	for code, n := range h.Status {
		if code/100 == 2 {
			res.OK += n
		} else {
			res.Non2xx += n
		}
	}
	for _, msg := range slices.Sorted(maps.Keys(h.Errors)) {
		n := h.Errors[msg]
		switch {
		case strings.Contains(msg, "connection refused"):
			res.Refused += n
		case strings.Contains(msg, "connection reset"), strings.Contains(msg, "EOF"), strings.Contains(msg, "broken pipe"):
			res.Reset += n
		default:
			res.Other += n
		}
		if len(res.Errors) < 10 {
			res.Errors = append(res.Errors, strconv.Itoa(n)+" "+msg)
		}
	}
	res.P50, res.P99, res.Slowest = h.P50.Seconds(), h.P99.Seconds(), h.Slowest.Seconds()
}

// medMax returns the median and the maximum of xs (0, 0 when empty).
func medMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

func table(path string, out io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var rs []Result
	dec := json.NewDecoder(f)
	for {
		var r Result
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		rs = append(rs, r)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(r Result) string) {
		fmt.Fprint(tw, name+"\t")
		for _, r := range rs {
			fmt.Fprint(tw, f(r)+"\t")
		}
		fmt.Fprintln(tw)
	}
	row("", func(r Result) string { return r.Label })
	row("reloads", func(r Result) string { return strconv.Itoa(len(r.Command)) + "/" + strconv.Itoa(r.Reloads) })
	row("requests", func(r Result) string { return strconv.Itoa(r.Requests) })
	row("req/s", func(r Result) string { return fmt.Sprintf("%.0f", float64(r.Requests)/r.Wall) })
	row("failed", func(r Result) string { return strconv.Itoa(r.Non2xx + r.Refused + r.Reset + r.Other) })
	row("  refused", func(r Result) string { return strconv.Itoa(r.Refused) })
	row("  reset/EOF", func(r Result) string { return strconv.Itoa(r.Reset) })
	row("  non-2xx", func(r Result) string { return strconv.Itoa(r.Non2xx) })
	row("  other", func(r Result) string { return strconv.Itoa(r.Other) })
	secs := func(v float64) string { return fmt.Sprintf("%.2fs", v) }
	row("reload command median", func(r Result) string { m, _ := medMax(r.Command); return secs(m) })
	row("reload command max", func(r Result) string { _, x := medMax(r.Command); return secs(x) })
	row("new version after, median", func(r Result) string { m, _ := medMax(r.NewVersion); return secs(m) })
	row("new version after, max", func(r Result) string { _, x := medMax(r.NewVersion); return secs(x) })
	row("latency p50", func(r Result) string { return secs(r.P50) })
	row("latency p99", func(r Result) string { return secs(r.P99) })
	row("latency max", func(r Result) string { return secs(r.Slowest) })
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rs {
		for _, e := range r.Errors {
			fmt.Fprintf(out, "%s: %s\n", r.Label, e)
		}
		for _, e := range r.Failures {
			fmt.Fprintf(out, "%s: FAILED %s\n", r.Label, e)
		}
	}
	return nil
}
