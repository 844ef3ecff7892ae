// Package contrib_test checks the files under contrib/ that ship beside the
// binary: Prometheus rules and configuration, the Grafana dashboard and the
// systemd units, with the real tools that consume them where installed.
package contrib_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// metricsGoldens pin every metric the supervisor exports (kept by the
// metrics package's own tests).
const metricsGoldens = "../metrics/testdata/*.golden"

// routeSeries are the per-route, Apdex and generation series the rules and
// the dashboard read, which the access-log collector exports.
var routeSeries = []string{
	"supervisor_route_requests_total", "supervisor_route_request_duration_seconds_bucket",
	"supervisor_app_apdex", "supervisor_generation_info",
}

func TestPromtoolContrib(t *testing.T) {
	promtool := testenv.Promtool(t)
	dir := "prometheus"
	tests := []struct {
		name string
		args []string
	}{
		{"check rules", []string{"check", "rules", "rules.yml"}},
		{"check config", []string{"check", "config", "prometheus.yml"}},
		{"check fleet config", []string{"check", "config", "prometheus-fleet.yml"}},
		{"test rules", []string{"test", "rules", "rules_test.yml"}},
		{"check apm rules", []string{"check", "rules", "rules-apm.yml"}},
		{"test apm rules", []string{"test", "rules", "rules-apm_test.yml"}},
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

// TestFleetTargets checks that the fleet configuration's file_sd glob
// matches target files (promtool checks each matching file's syntax, and
// passes a glob that matches nothing).
func TestFleetTargets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("prometheus", "targets", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("prometheus/targets/*.yml matches %v (%v), want the example targets", files, err)
	}
	cfg, err := os.ReadFile(filepath.Join("prometheus", "prometheus-fleet.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "- targets/*.yml") {
		t.Errorf("prometheus-fleet.yml does not read targets/*.yml")
	}
}

// dashboard is the part of a Grafana dashboard the test checks.
type dashboard struct {
	Title  string  `json:"title"`
	UID    string  `json:"uid"`
	Panels []panel `json:"panels"`
	// Annotations are the dashboard's event markers (deploys).
	Annotations struct {
		List []struct {
			Name string `json:"name"`
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// fleetFilter is what every series selector of the dashboard carries, so
// that one dashboard serves many hosts (the job and instance variables).
var fleetFilter = []string{`job=~"$job"`, `instance=~"$instance"`}

var selectorRE = regexp.MustCompile(`\b[a-z_:]+\{[^}]*\}`)

// checkFleetFilter fails the test for each series selector of expr
// (panel title) that does not filter by the job and instance variables.
func checkFleetFilter(t *testing.T, title, expr string) {
	t.Helper()
	sels := selectorRE.FindAllString(expr, -1)
	if len(sels) == 0 {
		t.Errorf("panel %q: %s has no selector filtering by job and instance", title, expr)
	}
	for _, sel := range sels {
		for _, f := range fleetFilter {
			if !strings.Contains(sel, f) {
				t.Errorf("panel %q: selector %s lacks %s", title, sel, f)
			}
		}
	}
}

type panel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	path := filepath.Join("grafana", "supervisor-dashboard.json")
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
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	for _, name := range []string{"job", "instance", "app"} {
		if vars[name] != "query" {
			t.Errorf("%s: variable %s is %q, want a query variable", path, name, vars[name])
		}
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
			checkFleetFilter(t, p.Title, tg.Expr)
			exprs += tg.Expr + "\n"
		}
	}
	// Every alert's signal has a panel, and the routes theirs.
	for _, metric := range []string{
		"supervisor_app_up", "supervisor_app_restarts_total", "supervisor_listener_queue_length",
		"supervisor_listener_queue_max", "supervisor_http_requests_total",
		"supervisor_http_request_duration_seconds_bucket", "supervisor_reloads_total",
		"supervisor_route_requests_total", "supervisor_route_request_duration_seconds_bucket",
		"supervisor_app_apdex", "supervisor_app_exceptions_total", "supervisor_worker_killed_total",
	} {
		if !strings.Contains(exprs, metric) {
			t.Errorf("no panel queries %s", metric)
		}
	}
	checkDeployAnnotation(t, &d)
}

// checkDeployAnnotation fails the test unless the dashboard marks each new
// generation (a supervisor_generation_info series appearing) as an
// annotation, filtered by the fleet variables.
func checkDeployAnnotation(t *testing.T, d *dashboard) {
	t.Helper()
	for _, a := range d.Annotations.List {
		if strings.Contains(a.Expr, "supervisor_generation_info") {
			checkFleetFilter(t, "annotation "+a.Name, a.Expr)
			return
		}
	}
	t.Errorf("no annotation reads supervisor_generation_info")
}

// TestContribMetricNames checks that the rules and the dashboard only name
// metrics the supervisor exports (as pinned by metrics/testdata/*.golden,
// and routeSeries).
func TestContribMetricNames(t *testing.T) {
	goldens, err := filepath.Glob(metricsGoldens)
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no %s: %v", metricsGoldens, err)
	}
	var golden []byte
	for _, g := range goldens {
		b, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		golden = append(golden, b...)
	}
	known := map[string]bool{}
	for _, n := range routeSeries {
		known[n] = true
	}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) (\S+)$`).FindAllStringSubmatch(string(golden), -1) {
		known[m[1]] = true
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[m[1]+s] = true
			}
		}
	}
	name := regexp.MustCompile(`\bsupervisor_[a-z_]+`)
	for _, f := range []string{"prometheus/rules.yml", "prometheus/rules-apm.yml", "grafana/supervisor-dashboard.json"} {
		b, err := os.ReadFile(f)
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
