package config

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestExecSizeRefused: check refuses an app whose command line and
// environment execve would refuse with E2BIG, naming the key the culprit
// comes from, and passes one just under the limits.
func TestExecSizeRefused(t *testing.T) {
	big := strings.Repeat("x", MaxArgStrlen)
	manyKeys := func(n, size int) string {
		var b strings.Builder
		b.WriteString("[app.web.env]\n")
		for i := range n {
			fmt.Fprintf(&b, "K%d = %q\n", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	manyLines := func(n, size int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "K%d=%s\n", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	limit := ExecArgLimit()
	for _, tc := range []struct {
		name, app, envFile, want string
	}{
		{"one_long_value", fmt.Sprintf("env = { BIG = %q }\n", big), "",
			"app.web.env.BIG: environment variable BIG is 131077 bytes: execve refuses a string over 131072 bytes"},
		{"many_keys", manyKeys(limit/100+1, 100), "",
			"app.web.env: command line and environment come to "},
		{"env_file_long_value", `env_file = "big.env"`, "BIG=" + big[:MaxArgStrlen-4] + "\n",
			"app.web.env_file: environment variable BIG is 131073 bytes"},
		{"env_file_many_lines", `env_file = "big.env"`, manyLines(limit/100+1, 100),
			"app.web.env_file: command line and environment come to "},
		{"long_argument", fmt.Sprintf("args = [%q]\n", "--x="+big), "",
			"app.web.args[0]: argument is 131077 bytes"},
		{"under_the_limits", fmt.Sprintf("env = { A = %q }\n", big[:MaxArgStrlen-100]), manyLines(100, 100), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t)
			if tc.envFile != "" {
				if err := os.WriteFile(filepath.Join(dir, "big.env"), []byte(tc.envFile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			app := tc.app
			if tc.name == "under_the_limits" {
				app += "env_file = \"big.env\"\n"
			}
			if strings.HasPrefix(app, "[app.web.env]") {
				app = "\n" + app // after the app's own keys
			}
			text := "[app.web]\nallow_root = true\nvirtualenv = \"venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:0\"]\n"
			p := writeConfig(t, dir, text+app)
			_, err := Load(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %.500v", err)
				}
				return
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) != 1 {
				t.Fatalf("err = %.500v, want one item", err)
			}
			if got := errs.List[0].Error(); !strings.Contains(got, tc.want) {
				t.Errorf("error\n%.500s\nlacks %q", got, tc.want)
			}
			if errs.List[0].Line == 0 {
				t.Errorf("error without a line: %.300v", errs.List[0])
			}
		})
	}
}

// TestCheckExecSize: the start-time check names the variable or argument
// at fault and the totals.
func TestCheckExecSize(t *testing.T) {
	var se *ExecSizeError
	err := CheckExecSize([]string{"gunicorn"}, []string{"A=1", "BIG=" + strings.Repeat("x", MaxArgStrlen)}, 0)
	if !errors.As(err, &se) || se.Var != "BIG" || se.Limit != 0 {
		t.Errorf("one long variable: %v", err)
	}
	env := make([]string, ExecArgLimit()/64)
	for i := range env {
		env[i] = fmt.Sprintf("K%06d=%s", i, strings.Repeat("v", 50))
	}
	err = CheckExecSize([]string{"gunicorn"}, env, 0)
	if !errors.As(err, &se) || se.Limit != ExecArgLimit() || se.Total <= se.Limit {
		t.Errorf("too many variables: %v", err)
	}
	if err := CheckExecSize([]string{"gunicorn"}, env[:100], 0); err != nil {
		t.Errorf("100 variables: %v", err)
	}
}

// TestExecSizeMatchesKernel: what CheckExecSize refuses, execve refuses
// with E2BIG, and what it lets through runs (/bin/true, real exec).
func TestExecSizeMatchesKernel(t *testing.T) {
	// Each variable takes 100 bytes, its NUL and a pointer: 109.
	var many []string
	for i := 0; len(many)*109 < ExecArgLimit()+4096; i++ {
		many = append(many, fmt.Sprintf("K%07d=%s", i, strings.Repeat("v", 91)))
	}
	fit := (ExecArgLimit() - 4096) / 109 // a page under the limit
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"longest_string", []string{"V=" + strings.Repeat("x", MaxArgStrlen-3)}},
		{"string_too_long", []string{"V=" + strings.Repeat("x", MaxArgStrlen-2)}},
		{"under_total", many[:fit]},
		{"over_total", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/true")
			cmd.Env = tc.env
			runErr := cmd.Run()
			checkErr := CheckExecSize(cmd.Args, tc.env, 0)
			if errors.Is(runErr, syscall.E2BIG) != (checkErr != nil) {
				t.Errorf("exec: %v; CheckExecSize: %.200v", runErr, checkErr)
			}
			if runErr != nil && !errors.Is(runErr, syscall.E2BIG) {
				t.Errorf("exec: %v", runErr)
			}
		})
	}
}
