package config

import (
	"errors"
	"strings"
	"testing"
)

// TestSupervisorSocketsClash: check refuses [supervisor] http on an app's
// listen address (the same one, or a wildcard on its port) and a control
// socket at an app's Unix listener, naming both keys and lines; http on
// port 0 or another port passes.
func TestSupervisorSocketsClash(t *testing.T) {
	for _, tc := range []struct {
		name, http, socket, listen, want string
	}{
		{"same_address", "127.0.0.1:18123", "", "tcp://127.0.0.1:18123",
			`:2: supervisor.http: "127.0.0.1:18123" is also the listen address "tcp://127.0.0.1:18123" of app "web" (app.web.listen[0], line 10)`},
		{"localhost", "localhost:18123", "", "tcp://127.0.0.1:18123",
			`supervisor.http: "localhost:18123" is also the listen address`},
		{"wildcard_http", ":18123", "", "tcp://127.0.0.1:18123",
			`supervisor.http: ":18123" overlaps the listen address "tcp://127.0.0.1:18123" of app "web" (app.web.listen[0], line 10)`},
		{"wildcard_app", "127.0.0.1:18123", "", "tcp://0.0.0.0:18123",
			`supervisor.http: "127.0.0.1:18123" overlaps the listen address "tcp://0.0.0.0:18123"`},
		{"control_socket", "127.0.0.1:0", "$TMP/app/web.sock", "unix://$TMP/app/web.sock",
			`:3: supervisor.control_socket: "`},
		{"port_zero", "127.0.0.1:0", "", "tcp://127.0.0.1:0", ""},
		{"other_port", "127.0.0.1:18124", "", "tcp://127.0.0.1:18123", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t)
			socket := tc.socket
			if socket == "" {
				socket = "$TMP/control.sock"
			}
			p := writeConfig(t, dir, `[supervisor]
http = "`+tc.http+`"
control_socket = "`+socket+`"

[app.web]
allow_root = true
virtualenv = "venv"
directory = "app"
wsgi = "app:app"
listen = ["`+tc.listen+`"]
`)
			_, err := Load(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) != 1 {
				t.Fatalf("err = %v, want one item", err)
			}
			if got := err.Error(); !strings.Contains(got, tc.want) {
				t.Errorf("error\n%s\nlacks %q", got, tc.want)
			}
		})
	}
}
