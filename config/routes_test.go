package config

import (
	"reflect"
	"testing"
	"time"
)

// withDefaultRoutes sets the route keys' defaults in a wanted
// configuration: on for Gunicorn apps, off for processes.
func withDefaultRoutes(c *Config) {
	for _, a := range c.Apps {
		a.Routes = defaultRouteMetrics()
		a.Routes.Enabled = a.Kind == KindGunicorn
		a.Routes.LoggerClass = loggerClass(a.Args)
	}
}

func TestLoggerClass(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--timeout", "30"}, ""},
		{[]string{"--logger-class", "my.Log"}, "my.Log"},
		{[]string{"--logger-class=my.Log"}, "my.Log"},
		{[]string{"--logg", "a.B", "--logger-class=c.D"}, "c.D"},
		{[]string{"--log-level", "debug"}, ""},
		{[]string{"--", "--logger-class", "x.Y"}, ""},
		{[]string{"--logger-class"}, ""},
	}
	for _, tt := range tests {
		if got := loggerClass(tt.args); got != tt.want {
			t.Errorf("loggerClass(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestRouteKeys(t *testing.T) {
	dir := fixture(t)
	path := writeConfig(t, dir, `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
args = ["--logger-class", "my.Log"]
routes = ["/api/items/:id", "/healthz"]
route_cap = 7
apdex_t = "250ms"
compare_window = "5s"
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := RouteMetrics{Enabled: true, Routes: []string{"/api/items/:id", "/healthz"}, Cap: 7,
		ApdexT: 250 * time.Millisecond, CompareWindow: 5 * time.Second, LoggerClass: "my.Log"}
	if got := cfg.Apps[0].Routes; !reflect.DeepEqual(got, want) {
		t.Errorf("Routes = %+v, want %+v", got, want)
	}
}
