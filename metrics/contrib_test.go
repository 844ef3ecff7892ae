package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// contribDir holds the Prometheus and Grafana files that use these metrics.
const contribDir = "../contrib"

// promtoolPath returns Debian's promtool, skipping the test when it is not
// installed (failing instead under CI=true).
func promtoolPath(tb testing.TB) string {
	tb.Helper()
	const p = "/usr/bin/promtool"
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("promtool: %v (apt-get install prometheus)", err)
		}
		tb.Skipf("promtool: %v (apt-get install prometheus)", err)
	}
	return p
}

func TestPromtoolContrib(t *testing.T) {
	promtool := promtoolPath(t)
	dir := filepath.Join(contribDir, "prometheus")
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "rules.yml"}},
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"test rules", []string{"test", "rules", "rules_test.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(promtool, tc.args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s in %s: %v\n%s", strings.Join(tc.args, " "), dir, err, out)
			}
		})
	}
}

// dashboard is the part of a Grafana dashboard the test checks.
type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	path := filepath.Join(contribDir, "grafana", "supervisor-dashboard.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q uid %q, want both set", path, d.Title, d.UID)
	}
	exprs := ""
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || len(p.Targets) == 0 {
			t.Errorf("panel %q (%s) has no title or no query", p.Title, p.Type)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			exprs += tg.Expr + "\n"
		}
	}
	// Every alert's signal has a panel.
	for _, metric := range []string{
		"supervisor_app_up", "supervisor_app_restarts_total", "supervisor_listener_queue_length",
		"supervisor_listener_queue_max", "supervisor_http_requests_total",
		"supervisor_http_request_duration_seconds_bucket", "supervisor_reloads_total",
	} {
		if !strings.Contains(exprs, metric) {
			t.Errorf("no panel queries %s", metric)
		}
	}
}

// TestContribMetricNames checks that the rules and the dashboard only name
// metrics this package exports (as pinned by testdata/metrics.golden).
func TestContribMetricNames(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "metrics.golden"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(string(golden), -1) {
		known[m[1]] = true
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[m[1]+s] = true
			}
		}
	}
	name := regexp.MustCompile(`\bsupervisor_[a-z_]+`)
	for _, f := range []string{"prometheus/rules.yml", "grafana/supervisor-dashboard.json"} {
		b, err := os.ReadFile(filepath.Join(contribDir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			if !known[n] {
				t.Errorf("%s names %s, which the supervisor does not export", f, n)
			}
		}
	}
}
