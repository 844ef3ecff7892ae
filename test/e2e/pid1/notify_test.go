package pid1

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// notifyMsg is one sd_notify datagram.
type notifyMsg struct {
	At   time.Time
	Raw  string
	Vars map[string]string
}

func (m notifyMsg) has(k, v string) bool { return m.Vars[k] == v }

// notifySocket plays systemd's side of sd_notify: a unixgram socket whose
// path goes into the supervisor's NOTIFY_SOCKET. It records every datagram.
type notifySocket struct {
	Path string

	mu      sync.Mutex
	msgs    []notifyMsg
	arrived chan struct{} // a token after each datagram (coalesced)
}

// listenNotify binds the socket in a short temporary directory; the test's
// cleanup closes it (after the supervisor's, when called before e2e.Start).
func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	n := &notifySocket{Path: filepath.Join(testenv.ShortTempDir(t), "notify"), arrived: make(chan struct{}, 1)}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.Path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notify socket: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64*1024)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return // closed by the cleanup
			}
			m := notifyMsg{At: time.Now(), Raw: string(buf[:k]), Vars: map[string]string{}}
			for _, line := range strings.Split(m.Raw, "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					m.Vars[k] = v
				}
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, m)
			n.mu.Unlock()
			select {
			case n.arrived <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("closing notify socket: %v", err)
		}
		<-done
	})
	return n
}

// all returns a copy of the datagrams received so far.
func (n *notifySocket) all() []notifyMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]notifyMsg(nil), n.msgs...)
}

// wait returns the first datagram at index >= from that satisfies match, and
// its index, waking on each arrival; it fails the test after timeout.
func (n *notifySocket) wait(t *testing.T, from int, timeout time.Duration, what string, match func(notifyMsg) bool) (int, notifyMsg) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msgs := n.all()
		for i := from; i < len(msgs); i++ {
			if match(msgs[i]) {
				return i, msgs[i]
			}
		}
		select {
		case <-n.arrived:
		case <-deadline.C:
			t.Fatalf("no %s on NOTIFY_SOCKET within %s; received:\n%s", what, timeout, timeline(msgs, time.Time{}, true))
		}
	}
}

// timeline renders datagrams one per line with their time since zero (the
// first datagram when zero is the zero time); watchdog pings are left out
// unless pings is true.
func timeline(msgs []notifyMsg, zero time.Time, pings bool) string {
	if zero.IsZero() && len(msgs) > 0 {
		zero = msgs[0].At
	}
	var b strings.Builder
	for _, m := range msgs {
		if !pings && m.Raw == "WATCHDOG=1" {
			continue
		}
		fmt.Fprintf(&b, "  +%-8s %s\n", m.At.Sub(zero).Round(time.Millisecond), strings.ReplaceAll(m.Raw, "\n", " | "))
	}
	return b.String()
}

// monotonicUsec reads CLOCK_MONOTONIC in µs, the clock of MONOTONIC_USEC.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatalf("clock_gettime(CLOCK_MONOTONIC): %v", err)
	}
	return ts.Nano() / int64(time.Microsecond)
}

var notifyConfig = e2e.Config{ShutdownTimeout: "60s"}.String() + `
[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "10s"
env = { BOOT_DELAY = "3" }

[app.web.reload]
strategy = "swap"
timeout = "120s"
`

// TestNotifyProtocol drives the supervisor as a Type=notify service with a
// 2 s watchdog: READY=1 only once the app answers (its workers take 3 s to
// boot, so an early READY=1 would be caught), STATUS= lines, WATCHDOG=1
// about every second, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around
// `supctl reload`, STOPPING=1 at TERM; and none of systemd's variables
// reach the app.
func TestNotifyProtocol(t *testing.T) {
	n := listenNotify(t)
	s := e2e.Start(t, e2e.Options{
		Config: notifyConfig,
		Env:    []string{"NOTIFY_SOCKET=" + n.Path, "WATCHDOG_USEC=2000000"},
		Setup:  func(dir string) { writeTestApp(t, filepath.Join(dir, "app")) },
	})
	addr := s.Addr("web")

	// READY=1, and at that moment the app answers.
	ri, ready := n.wait(t, 0, 90*time.Second, "READY=1", func(m notifyMsg) bool { return m.has("READY", "1") })
	code, body, err := testenv.Get(addr, "/")
	got := time.Now()
	before := n.all()[:ri]
	t.Logf("start-up datagrams:\n%s", timeline(n.all()[:ri+1], time.Time{}, false))
	t.Logf("READY=1 %s after the first datagram; GET / right after it: %d %q in %s (err %v)",
		ready.At.Sub(n.all()[0].At).Round(time.Millisecond), code, strings.TrimSpace(body), got.Sub(ready.At).Round(time.Millisecond), err)
	if err != nil || code != 200 || body != "version=1\n" {
		t.Errorf("GET / when READY=1 arrived: %d %q %v; READY=1 came before the app answered", code, body, err)
	}
	startingSeen := false
	for _, m := range before {
		if strings.Contains(m.Vars["STATUS"], "starting") {
			startingSeen = true
		}
	}
	if !startingSeen {
		t.Errorf("no STATUS= line saying the app is starting before READY=1")
	}
	if !strings.Contains(ready.Vars["STATUS"], "1 running") {
		t.Errorf("READY=1 datagram %q: want STATUS= with \"1 running\"", ready.Raw)
	}

	// The app's processes carry none of systemd's variables; the supervisor
	// was given them.
	sup := environ(t, s.Cmd.Process.Pid)
	if !slices.Contains(sup, "NOTIFY_SOCKET="+n.Path) || !slices.Contains(sup, "WATCHDOG_USEC=2000000") {
		t.Errorf("the supervisor's own environment lacks the variables under test: %q", sup)
	}
	web := s.App("web")
	assertNoSystemdEnv(t, "gunicorn master", web.MasterPID)
	for _, w := range web.WorkerPIDs {
		assertNoSystemdEnv(t, "gunicorn worker", w)
	}
	t.Logf("environment of master %d and workers %v: no %s", web.MasterPID, web.WorkerPIDs, strings.Join(systemdVars, ", "))

	// WATCHDOG=1 about every second (half of WATCHDOG_USEC): at least 3
	// within 5 s of READY=1.
	isPing := func(m notifyMsg) bool { return m.Raw == "WATCHDOG=1" }
	from := ri
	var pings []time.Time
	for len(pings) < 3 {
		left := 5*time.Second - time.Since(ready.At)
		if left <= 0 {
			break
		}
		i, m := n.wait(t, from, left, fmt.Sprintf("WATCHDOG=1 number %d within 5 s of READY=1", len(pings)+1), isPing)
		pings = append(pings, m.At)
		from = i + 1
	}
	var gaps []string
	allPings := 0
	var last time.Time
	for _, m := range n.all() {
		if isPing(m) {
			if !last.IsZero() {
				gaps = append(gaps, m.At.Sub(last).Round(time.Millisecond).String())
			}
			last = m.At
			allPings++
		}
	}
	t.Logf("watchdog: %d pings within 5 s of READY=1 (last at +%s); %d pings so far, gaps %v",
		len(pings), pings[len(pings)-1].Sub(ready.At).Round(time.Millisecond), allPings, gaps)

	// A reload is bracketed by RELOADING=1 (with MONOTONIC_USEC) and READY=1.
	mark := len(n.all())
	monoBefore := monotonicUsec(t)
	reloadAt := time.Now()
	out, rc := s.SupctlRun("reload", "web")
	reloadDone := time.Now()
	if rc != 0 {
		t.Fatalf("supctl reload web: exit %d\n%s", rc, out)
	}
	li, reloading := n.wait(t, mark, 30*time.Second, "RELOADING=1 after supctl reload", func(m notifyMsg) bool { return m.has("RELOADING", "1") })
	monoAfter := monotonicUsec(t)
	usec, err := strconv.ParseInt(reloading.Vars["MONOTONIC_USEC"], 10, 64)
	if err != nil || usec < monoBefore || usec > monoAfter {
		t.Errorf("RELOADING=1 datagram %q: MONOTONIC_USEC must be CLOCK_MONOTONIC in µs between %d and %d", reloading.Raw, monoBefore, monoAfter)
	}
	_, reReady := n.wait(t, li+1, 30*time.Second, "READY=1 after RELOADING=1", func(m notifyMsg) bool { return m.has("READY", "1") })
	t.Logf("reload: supctl took %s; RELOADING=1 +%s, READY=1 +%s after supctl started:\n%s",
		reloadDone.Sub(reloadAt).Round(time.Millisecond), reloading.At.Sub(reloadAt).Round(time.Millisecond), reReady.At.Sub(reloadAt).Round(time.Millisecond),
		timeline(n.all()[mark:], reloadAt, false))
	if after := s.App("web"); after.Generation < 2 || after.LastReload == nil || after.LastReload.Result != "ok" {
		t.Errorf("after the reload: generation %d, last reload %+v; want generation 2, ok", after.Generation, after.LastReload)
	}

	// STOPPING=1 at TERM, and nothing says READY after it.
	mark = len(n.all())
	if code := s.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after TERM, want 0", code)
	}
	si, _ := n.wait(t, mark, 5*time.Second, "STOPPING=1 after TERM", func(m notifyMsg) bool { return m.has("STOPPING", "1") })
	for _, m := range n.all()[si:] {
		if m.has("READY", "1") || m.has("RELOADING", "1") {
			t.Errorf("datagram %q after STOPPING=1", m.Raw)
		}
	}
	t.Logf("shutdown datagrams:\n%s", timeline(n.all()[mark:], time.Time{}, true))
}
