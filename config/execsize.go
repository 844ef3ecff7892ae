package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxArgStrlen is the longest argument or environment string execve
// accepts, its terminating NUL included (Linux's MAX_ARG_STRLEN, 32 pages):
// a longer one fails the exec with E2BIG.
const MaxArgStrlen = 32 * 4096

// execReserve is what check counts for the strings the supervisor adds to
// an app's command line and environment at start and that it cannot know
// before (Gunicorn's --pid and --statsd-host, GUNICORN_FD, LISTEN_FDS, the
// exec shim): generously more than they take.
const execReserve = 4096

// ExecArgLimit returns how many bytes execve accepts for the command line
// and environment together (each string with its NUL, plus one pointer per
// string), as Linux derives it from the soft stack limit: a quarter of it,
// at most 6 MiB (three quarters of the kernel's 8 MiB _STK_LIM), at least
// 128 KiB (ARG_MAX). Children inherit the supervisor's stack limit.
func ExecArgLimit() int {
	const argMax, capped = 32 * 4096, 6 << 20
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY || rl.Cur/4 >= capped {
		return capped
	}
	return max(int(rl.Cur/4), argMax)
}

// ExecSizeError says why execve would refuse a command line and
// environment with E2BIG.
type ExecSizeError struct {
	// Var is the environment variable at fault (one too long, or the
	// largest when the total is), or "" for an argument.
	Var string
	// Arg is the index of the argument too long, when Var is "".
	Arg int
	// Size is the bytes of the string at fault, its NUL included.
	Size int
	// Total and Limit are set when the strings together are too many
	// bytes (see ExecArgLimit); both are 0 when one string is too long.
	Total, Limit, Count int
}

func (e *ExecSizeError) Error() string {
	what := "environment variable " + e.Var
	if e.Var == "" {
		what = fmt.Sprintf("argument %d", e.Arg)
	}
	if e.Limit == 0 {
		return fmt.Sprintf("%s is %d bytes: execve refuses a string over %d bytes (E2BIG)", what, e.Size, MaxArgStrlen)
	}
	return fmt.Sprintf("command line and environment come to %d bytes in %d strings: execve refuses more than %d (a quarter of the stack limit; E2BIG); the largest is %s (%d bytes)",
		e.Total, e.Count, e.Limit, what, e.Size)
}

// CheckExecSize returns an *ExecSizeError when execve would refuse argv
// and env (KEY=VALUE strings) with E2BIG, nil when they fit; reserve is
// added to the total, for strings still to come.
func CheckExecSize(argv, env []string, reserve int) error {
	total := reserve
	largest := &ExecSizeError{}
	for i, s := range argv {
		n := len(s) + 1
		if n > MaxArgStrlen {
			return &ExecSizeError{Arg: i, Size: n}
		}
		total += n + 8
		if n > largest.Size {
			largest = &ExecSizeError{Arg: i, Size: n}
		}
	}
	for _, s := range env {
		n := len(s) + 1
		name, _, _ := strings.Cut(s, "=")
		if n > MaxArgStrlen {
			return &ExecSizeError{Var: name, Size: n}
		}
		total += n + 8
		if n > largest.Size {
			largest = &ExecSizeError{Var: name, Size: n}
		}
	}
	if limit := ExecArgLimit(); total > limit {
		largest.Total, largest.Limit, largest.Count = total, limit, len(argv)+len(env)
		return largest
	}
	return nil
}

// InheritedVar reports whether the supervisor's own variable name reaches
// an app's environment: PATH, LANG, LANGUAGE, TZ, TMPDIR, every LC_*, the
// names in pass (never one NeverPassed refuses), and HOME, USER and
// LOGNAME when ownAccount (the app runs as the supervisor's user).
func InheritedVar(name string, ownAccount bool, pass []string) bool {
	switch name {
	case "PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR":
		return true
	case "HOME", "USER", "LOGNAME":
		if ownAccount {
			return true
		}
	}
	return strings.HasPrefix(name, "LC_") || (slices.Contains(pass, name) && !NeverPassed(name))
}

// execEstimate is the command line and environment app a would be started
// with, as far as check knows them: the inherited part of this process's
// environment, VIRTUAL_ENV and PWD, fromFile (its env_file) and its env
// with {release} as its directory.
func execEstimate(a *App, pass []string, fromFile map[string]string) (argv, env []string) {
	vars := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); InheritedVar(k, a.Identity.User == "", pass) {
			vars[k] = v
		}
	}
	if a.Virtualenv != "" {
		vars["VIRTUAL_ENV"] = a.Virtualenv
		vars["PATH"] = filepath.Join(a.Virtualenv, "bin") + ":" + vars["PATH"]
	}
	maps.Copy(vars, fromFile)
	for k, v := range a.Env {
		vars[k] = ExpandEnv(v, a.Name, a.Directory)
	}
	vars["PWD"] = a.Directory
	env = make([]string, 0, len(vars))
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	argv = slices.Clone(a.Command)
	if a.Kind == KindGunicorn {
		argv = append([]string{a.GunicornBin()}, a.Args...)
		argv = append(argv, a.WSGI)
	}
	return argv, env
}

// execSize reports an app whose command line and environment execve would
// refuse, at the key the culprit comes from: env.VAR, env_file, command
// or args.
func (p *parser) execSize(t *table, a *App, fromFile map[string]string) {
	argv, env := execEstimate(a, p.passEnv, fromFile)
	err := CheckExecSize(argv, env, execReserve)
	var se *ExecSizeError
	if !errors.As(err, &se) {
		return
	}
	if se.Var == "" && se.Limit == 0 { // one argument too long: name its element
		msg := fmt.Sprintf("argument is %d bytes: execve refuses a string over %d bytes (E2BIG)", se.Size, MaxArgStrlen)
		switch i := se.Arg - 1; { // a Gunicorn app's: the executable, args, wsgi (execEstimate)
		case a.Kind != KindGunicorn:
			p.elemErrf(t.key("command"), se.Arg, "%s", msg)
		case i >= 0 && i < len(a.Args):
			p.elemErrf(t.key("args"), i, "%s", msg)
		default:
			p.errf(t.key("wsgi"), "%s", msg)
		}
		return
	}
	p.errf(execKey(t, a, se, fromFile), "%v", err)
}

// execKey is the key an ExecSizeError of app a is reported at: where the
// string too long comes from (env.VAR, env_file, command or args) or, for
// too many bytes in all, env or env_file, whichever holds more.
func execKey(t *table, a *App, se *ExecSizeError, fromFile map[string]string) []string {
	size := func(m map[string]string) (n int) {
		for k, v := range m {
			n += len(k) + len(v) + 2
		}
		return n
	}
	_, inEnv := a.Env[se.Var]
	_, inFile := fromFile[se.Var]
	switch {
	case se.Limit > 0 && len(a.Env)+len(fromFile) > 0 && size(a.Env) >= size(fromFile):
		return t.key("env")
	case se.Limit > 0 && len(fromFile) > 0:
		return t.key("env_file")
	case se.Var == "" && len(a.Command) > 0:
		return t.key("command")
	case se.Var == "":
		return t.key("args")
	case inEnv:
		return join(t.key("env"), []string{se.Var})
	case inFile:
		return t.key("env_file")
	}
	return t.path // an inherited variable, PWD or VIRTUAL_ENV
}
