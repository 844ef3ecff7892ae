package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeManyApps writes a configuration of n Gunicorn apps into the fixture
// dir: each with a virtualenv, a Unix and a TCP listener (127.X.Y.Z:8000,
// one address each), an env table and an after
// naming the app before it; a group lists every tenth app. It returns the
// file's path.
func writeManyApps(tb testing.TB, dir string, n int) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[supervisor]\ncontrol_socket = %q\nhttp = \"127.0.0.1:0\"\nrun_dir = %q\n\n",
		filepath.Join(dir, "control.sock"), filepath.Join(dir, "run"))
	for i := range n {
		fmt.Fprintf(&b, "[app.a%d]\nallow_root = true\nvirtualenv = \"venv\"\ndirectory = \"app\"\nwsgi = \"app:app\"\n", i)
		fmt.Fprintf(&b, "listen = [\"unix://%s/app/s%d.sock\", \"tcp://127.%d.%d.%d:8000\"]\n", dir, i, i/62500, i/250%250, 1+i%250)
		fmt.Fprintf(&b, "env = { A = \"1\", B = \"%d\" }\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "after = [\"a%d\"]\n", i-1)
		}
		b.WriteString("\n")
	}
	b.WriteString("[group.tenth]\napps = [")
	for i := 0; i < n; i += 10 {
		fmt.Fprintf(&b, "%q,", fmt.Sprintf("a%d", i))
	}
	b.WriteString("]\n")
	p := filepath.Join(dir, fmt.Sprintf("apps%d.toml", n))
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkLoadManyApps loads configurations of 10k, 40k and 100k apps and
// reports the time per app: flat across the sizes when check is linear.
func BenchmarkLoadManyApps(b *testing.B) {
	for _, n := range []int{10_000, 40_000, 100_000} {
		b.Run(fmt.Sprintf("apps=%d", n), func(b *testing.B) {
			dir := fixture(b)
			path := writeManyApps(b, dir, n)
			b.ResetTimer()
			for range b.N {
				cfg, err := Load(path)
				if err != nil {
					b.Fatal(err)
				}
				if len(cfg.Apps) != n {
					b.Fatalf("%d apps loaded, want %d", len(cfg.Apps), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/app")
		})
	}
}

// chainedApps returns n apps named a0..a(n-1), each after the one before it.
func chainedApps(n int) []*App {
	apps := make([]*App, n)
	for i := range apps {
		apps[i] = &App{Name: fmt.Sprintf("a%d", i)}
		if i > 0 {
			apps[i].After = []string{apps[i-1].Name}
		}
	}
	return apps
}

// TestOrderChecksManyApps: the start-order checks of 100,000 apps chained
// by after, listed in one group, finish well within a generous deadline
// (they look names up in a map, not by scanning the apps), and a cycle
// closing the chain is still found and named.
func TestOrderChecksManyApps(t *testing.T) {
	const n = 100_000
	for _, tc := range []struct {
		name  string
		cycle bool
	}{{"chain", false}, {"cycle", true}} {
		t.Run(tc.name, func(t *testing.T) {
			apps := chainedApps(n)
			if tc.cycle {
				apps[0].After = []string{apps[n-1].Name}
			}
			all := make([]string, n)
			for i, a := range apps {
				all[i] = a.Name
			}
			cfg := &Config{Apps: apps, Groups: []Group{{Name: "all", Apps: all}}}
			p := &parser{file: "supervisor.toml", files: []string{"supervisor.toml"}, dirs: []string{"."}, lines: newKeyIndex(0), errs: &Errors{}}
			done := make(chan struct{})
			start := time.Now()
			go func() {
				defer close(done)
				p.orderChecks(cfg)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("order checks of %d apps still running after 60 s", n)
			}
			t.Logf("order checks of %d apps: %v", n, time.Since(start).Round(time.Millisecond))
			err := p.errs.err()
			switch {
			case !tc.cycle && err != nil:
				t.Fatalf("chain without a cycle refused: %.300v", err)
			case tc.cycle && (err == nil || !strings.Contains(err.Error(), "start order has a cycle: a0 -> a99999 -> a99998")):
				t.Fatalf("cycle through %d apps not reported: %.300v", n, err)
			}
		})
	}
}
