package importer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSplitCommand: commands split as Python's shlex.split (POSIX) does.
func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"gunicorn  -b 127.0.0.1:8000 app:app", []string{"gunicorn", "-b", "127.0.0.1:8000", "app:app"}},
		{`bash -c "source env.sh && exec ./run \"x\""`, []string{"bash", "-c", `source env.sh && exec ./run "x"`}},
		{`echo 'a  b' c\ d "" x`, []string{"echo", "a  b", "c d", "", "x"}},
		{"a\n  b", []string{"a", "b"}},
	} {
		got, err := splitCommand(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := splitCommand(`echo "open`); err == nil {
		t.Error("an unclosed quote is not an error")
	}
}

// TestSplitEnvironment: environment=KEY="val",KEY2=val2 with quoted commas.
func TestSplitEnvironment(t *testing.T) {
	got, err := splitEnvironment(`A="1,2", B=plain,C='x y',` + "\n" + `  D=""`)
	want := [][2]string{{"A", "1,2"}, {"B", "plain"}, {"C", "x y"}, {"D", ""}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	if _, err := splitEnvironment("novalue"); err == nil {
		t.Error("a pair without = is not an error")
	}
}

// TestExpand: supervisord's %(NAME)s expansions, %% and unknown names.
func TestExpand(t *testing.T) {
	e := &expansion{
		vars: map[string]string{"program_name": "web", "process_num": "3", "here": "/etc/supervisor"},
		env:  func(k string) (string, bool) { return map[string]string{"HOME": "/root"}[k], k == "HOME" },
		used: map[string]bool{},
	}
	got, unknown := e.expand("%(here)s/%(program_name)s-%(process_num)02d %(ENV_HOME)s 100%% %(nope)s %(ENV_NOPE)s")
	if want := "/etc/supervisor/web-03 /root 100% %(nope)s %(ENV_NOPE)s"; got != want {
		t.Errorf("expand = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(unknown, []string{"nope", "ENV_NOPE"}) || !e.used["HOME"] {
		t.Errorf("unknown %q, used %v", unknown, e.used)
	}
	e.vars["process_num"] = instanceMark
	if got, _ := e.expand("w%(process_num)02d"); got != "w{instance}" {
		t.Errorf("instances: %q", got)
	}
}

// TestParseGunicorn: Gunicorn command lines and what each argument becomes.
func TestParseGunicorn(t *testing.T) {
	for _, tc := range []struct {
		cmd       string
		venv, exe string
		wsgi      string
		workers   int
		listen    []string
		args      []string
		warnings  int
	}{
		{cmd: "/srv/v/bin/gunicorn -w4 -bunix:/run/a.sock --bind=:9000 app:app --timeout 30",
			venv: "/srv/v", wsgi: "app:app", workers: 4, listen: []string{"unix:///run/a.sock", "tcp://0.0.0.0:9000"}, args: []string{"--timeout", "30"}},
		{cmd: "/opt/app/.venv/bin/python3.11 -m gunicorn --preload -c conf.py -D proj.wsgi",
			venv: "/opt/app/.venv", wsgi: "proj.wsgi", args: []string{"--preload", "-c", "conf.py"}, warnings: 1},
		{cmd: "gunicorn --workers many -b localhost app", exe: "gunicorn", wsgi: "app", listen: []string{"tcp://localhost:8000"},
			args: []string{"--workers", "many"}, warnings: 1},
		{cmd: "/usr/bin/gunicorn --pid /run/g.pid -b fd://3 app", exe: "/usr/bin/gunicorn", wsgi: "app", warnings: 2},
	} {
		argv, err := splitCommand(tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := parseGunicorn(argv)
		if !ok || g.venv != tc.venv || g.exe != tc.exe || g.wsgi != tc.wsgi || g.workers != tc.workers ||
			!reflect.DeepEqual(g.listen, tc.listen) || !reflect.DeepEqual(g.args, tc.args) || len(g.warnings) != tc.warnings {
			t.Errorf("%s:\ngot  %+v (%v)", tc.cmd, g, ok)
		}
	}
	for _, cmd := range [][]string{{"/srv/v/bin/celery", "-A", "proj", "worker"}, {"python", "manage.py", "runserver"}, {"python", "-m", "celery"}} {
		if _, ok := parseGunicorn(cmd); ok {
			t.Errorf("%q taken for Gunicorn", cmd)
		}
	}
}

// TestParseINI: comments, continuation lines, `:` separators, lowercased
// keys, and errors naming file and line.
func TestParseINI(t *testing.T) {
	var warnings []string
	warn := func(f string, l int, m string) { warnings = append(warnings, m) }
	secs, err := parseINI("f.conf", "; c\n# c\n[program:a]\nCommand: x ;note\n  y\nuser=a;b\nuser=c\n\n[group:g]\nprograms=a\n", warn)
	if err != nil {
		t.Fatal(err)
	}
	if len(secs) != 2 || secs[0].name != "program:a" || secs[1].line != 9 {
		t.Fatalf("sections %+v", secs)
	}
	if o, _ := secs[0].get("command"); o.value != "x\ny" || o.line != 4 {
		t.Errorf("command %+v", o)
	}
	if o, _ := secs[0].get("user"); o.value != "c" || len(warnings) != 1 {
		t.Errorf("user %+v, warnings %q", o, warnings)
	}
	for _, bad := range []string{"key=1\n", "[a]\njunk\n", "[a\n", "  cont\n"} {
		if _, err := parseINI("f.conf", bad, warn); err == nil || !strings.HasPrefix(err.Error(), "f.conf:1:") && !strings.HasPrefix(err.Error(), "f.conf:2:") {
			t.Errorf("%q: error %v, want one naming f.conf and the line", bad, err)
		}
	}
}

// TestIncludeAndErrors: [include] globs are relative to the including
// file, included files' own [include] is ignored with a warning, and a
// program defined twice or an unreadable file is an error naming it.
func TestIncludeAndErrors(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"etc/supervisord.conf": "[include]\nfiles = conf.d/*.conf other/none.conf\n",
		"etc/conf.d/a.conf":    "[program:a]\ncommand=/bin/sleep 1\n[include]\nfiles=*.ini\n",
		"etc/conf.d/b.conf":    "[program:b]\ncommand=/bin/sleep %(program_name)s\n",
		"dup.conf":             "[program:a]\ncommand=/bin/true\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "etc/supervisord.conf")
	res, err := Convert([]string{main}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.TOML)
	if !strings.Contains(out, "[app.a]") || !strings.Contains(out, `command = ["/bin/sleep", "b"]`) {
		t.Errorf("included programs missing:\n%s", out)
	}
	joined := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"a.conf:3: [include] in an included file", "other/none.conf matches no file"} {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", joined, w)
		}
	}
	if _, err := Convert([]string{main, filepath.Join(dir, "dup.conf")}, Options{}); err == nil || !strings.Contains(err.Error(), "dup.conf:1: [program:a] defined twice") {
		t.Errorf("duplicate program: %v", err)
	}
	if _, err := Convert([]string{filepath.Join(dir, "none.conf")}, Options{}); err == nil || !strings.Contains(err.Error(), "none.conf: cannot read") {
		t.Errorf("missing file: %v", err)
	}
}

// TestDefaultUserAndDirectory: [supervisord] user is the user of programs
// without their own, root needs allow_root, and a relative directory is
// not mapped.
func TestDefaultUserAndDirectory(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "supervisord.conf")
	text := "[supervisord]\nuser=app\n[program:a]\ncommand=/bin/true\ndirectory=rel\n[program:b]\ncommand=/bin/true\nuser=root\n[program:c]\ncommand=/bin/true\nuser=web\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Convert([]string{conf}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.TOML)
	for _, want := range []string{
		"[app.a]\nkind = \"process\"\ncommand = [\"/bin/true\"]\n# directory = rel: not mapped (relative)\n# [supervisord] user: supervisord ran every program as that user\nuser = \"app\"\n",
		"[app.b]\nkind = \"process\"\ncommand = [\"/bin/true\"]\n# supervisord ran it as root: consider setting user\nallow_root = true\n",
		"[app.c]\nkind = \"process\"\ncommand = [\"/bin/true\"]\nuser = \"web\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks\n%s\nin\n%s", want, out)
		}
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, conf+":5: [program:a] directory: rel: relative") {
		t.Errorf("warnings %q lack the relative directory", w)
	}
}
