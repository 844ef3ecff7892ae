package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// listenNotify binds a real unixgram socket the way systemd does and points
// NOTIFY_SOCKET at it. addr is a path, or "@name" for an abstract socket.
func listenNotify(t *testing.T, addr string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen unixgram %s: %v", addr, err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil {
			t.Errorf("close %s: %v", addr, err)
		}
	})
	t.Setenv(envNotifySocket, addr)
	return conn
}

// recvDatagram returns the next datagram. Notify returns only after the
// datagram is queued on the receiver, so the deadline is a hang guard only.
func recvDatagram(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	buf := make([]byte, 4096)
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:n])
}

func notifyAddrs(t *testing.T) map[string]string {
	return map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify.sock"),
		"abstract": fmt.Sprintf("@sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	}
}

func TestNotifierSendsExactDatagrams(t *testing.T) {
	for kind, addr := range notifyAddrs(t) {
		t.Run(kind, func(t *testing.T) {
			conn := listenNotify(t, addr)
			n, err := FromEnv(false)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if n == nil {
				t.Fatal("FromEnv returned nil with NOTIFY_SOCKET set")
			}
			if got := n.Socket(); got != addr {
				t.Errorf("Socket() = %q, want %q", got, addr)
			}
			tests := []struct {
				name string
				send func() error
				want string
			}{
				{"ready", func() error { return n.Ready("") }, "READY=1"},
				{"ready with status", func() error { return n.Ready("3 apps up") }, "READY=1\nSTATUS=3 apps up"},
				{"ready status newline", func() error { return n.Ready("a\nWATCHDOG=1") }, "READY=1\nSTATUS=a WATCHDOG=1"},
				{"stopping", n.Stopping, "STOPPING=1"},
				{"status", func() error { return n.Status("reloading web") }, "STATUS=reloading web"},
				{"status crlf", func() error { return n.Status("a\r\nb") }, "STATUS=a b"},
				{"watchdog", n.Watchdog, "WATCHDOG=1"},
				{"raw", func() error { return n.Notify("MAINPID=42\nSTATUS=x") }, "MAINPID=42\nSTATUS=x"},
			}
			for _, tc := range tests {
				if err := tc.send(); err != nil {
					t.Fatalf("%s: %v", tc.name, err)
				}
				if got := recvDatagram(t, conn); got != tc.want {
					t.Errorf("%s: datagram %q, want %q", tc.name, got, tc.want)
				}
			}
		})
	}
}

func TestReloadingSendsMonotonicTime(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify.sock"))
	n, err := FromEnv(false)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	before, err := monotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Reloading(); err != nil {
		t.Fatalf("Reloading: %v", err)
	}
	after, err := monotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	got := recvDatagram(t, conn)
	m := regexp.MustCompile(`\ARELOADING=1\nMONOTONIC_USEC=([0-9]+)\z`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("datagram %q, want RELOADING=1\\nMONOTONIC_USEC=<usec>", got)
	}
	usec, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC %q: %v", m[1], err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d, want within [%d, %d]", usec, before, after)
	}
}

func TestFromEnvUnsetsAndKeepsWatchdog(t *testing.T) {
	addr := filepath.Join(t.TempDir(), "notify.sock")
	listenNotify(t, addr)
	t.Setenv(envWatchdogUsec, "30000000")
	t.Setenv(envWatchdogPID, strconv.Itoa(os.Getpid()))

	n, err := FromEnv(true)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	for _, name := range []string{envNotifySocket, envWatchdogUsec, envWatchdogPID} {
		if v, ok := os.LookupEnv(name); ok {
			t.Errorf("%s=%q still set after FromEnv(true)", name, v)
		}
	}
	if got := n.Socket(); got != addr {
		t.Errorf("Socket() = %q, want %q", got, addr)
	}
	if d, ok := n.WatchdogInterval(); !ok || d != 15*time.Second {
		t.Errorf("WatchdogInterval() = %v, %v; want 15s, true", d, ok)
	}
}

func TestFromEnvUnsetMeansNil(t *testing.T) {
	t.Setenv(envNotifySocket, "")
	t.Setenv(envWatchdogUsec, "1000000")
	n, err := FromEnv(true)
	if err != nil || n != nil {
		t.Fatalf("FromEnv = %v, %v; want nil, nil", n, err)
	}
	if _, ok := os.LookupEnv(envWatchdogUsec); ok {
		t.Errorf("%s still set after FromEnv(true)", envWatchdogUsec)
	}
}

func TestFromEnvRejectsBadSocket(t *testing.T) {
	for _, v := range []string{"relative/notify.sock", "@", "vsock:2:1234"} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(envNotifySocket, v)
			n, err := FromEnv(false)
			if err == nil {
				t.Fatalf("FromEnv with %s=%q = %v, nil; want an error", envNotifySocket, v, n)
			}
		})
	}
}

func TestNilNotifierIsNoop(t *testing.T) {
	var n *Notifier
	calls := map[string]func() error{
		"Notify":    func() error { return n.Notify("READY=1") },
		"Ready":     func() error { return n.Ready("up") },
		"Reloading": n.Reloading,
		"Stopping":  n.Stopping,
		"Status":    func() error { return n.Status("x") },
		"Watchdog":  n.Watchdog,
	}
	for name, call := range calls {
		if err := call(); err != nil {
			t.Errorf("nil.%s() = %v, want nil", name, err)
		}
	}
	if d, ok := n.WatchdogInterval(); ok || d != 0 {
		t.Errorf("nil.WatchdogInterval() = %v, %v; want 0, false", d, ok)
	}
	if s := n.Socket(); s != "" {
		t.Errorf("nil.Socket() = %q, want empty", s)
	}
}

func TestNotifyReportsMissingManager(t *testing.T) {
	t.Setenv(envNotifySocket, filepath.Join(t.TempDir(), "gone.sock"))
	n, err := FromEnv(false)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if err := n.Ready(""); err == nil {
		t.Fatal("Ready to a socket nobody listens on returned nil")
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name   string
		usec   string
		pid    string
		want   time.Duration
		wantOK bool
	}{
		{"unset", "", "", 0, false},
		{"30s no pid", "30000000", "", 15 * time.Second, true},
		{"30s own pid", "30000000", self, 15 * time.Second, true},
		{"odd usec", "3", "", 1500 * time.Nanosecond, true},
		{"pid mismatch", "30000000", strconv.Itoa(os.Getpid() + 1), 0, false},
		{"pid garbage", "30000000", "abc", 0, false},
		{"zero", "0", "", 0, false},
		{"negative", "-5", "", 0, false},
		{"garbage", "30s", "", 0, false},
		{"overflow", "18446744073709551615", "", 0, false},
		{"wraps", "9223372036854775807", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envNotifySocket, filepath.Join(t.TempDir(), "notify.sock"))
			t.Setenv(envWatchdogUsec, tc.usec)
			t.Setenv(envWatchdogPID, tc.pid)
			n, err := FromEnv(false)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			got, ok := n.WatchdogInterval()
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("WatchdogInterval(USEC=%q PID=%q) = %v, %v; want %v, %v", tc.usec, tc.pid, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
