package gunicorn

import (
	"bytes"
	_ "embed" // the logger class, access.py
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/safefile"
)

// accessModule is the Python module of the logger class that writes a
// machine-readable access line per request (see access.py).
//
//go:embed access.py
var accessModule []byte

// AccessModule is the module's name, and AccessClass the --logger-class
// value that selects it.
const (
	AccessModule = "gunisup_access"
	AccessClass  = AccessModule + ".Logger"
)

// Environment variables the logger class reads: the pipe's descriptor and
// the user's own --logger-class, which it subclasses.
const (
	envAccessFD    = "GUNISUP_ACCESS_FD"
	envLoggerClass = "GUNISUP_LOGGER_CLASS"
)

// WriteAccessModule writes gunisup_access.py into app's run directory
// (config.AppRunDir, made by MakeRunDir), which AccessEnv puts on the
// master's PYTHONPATH. The file is written under a temporary name and
// renamed, through the directory opened without following links, so a link
// the app's user planted is replaced, never written through. The error
// names the app and the file.
func WriteAccessModule(runDir string, app *config.App) error {
	dir := config.AppRunDir(runDir, app.Name)
	d, err := safefile.OpenDir(dir, false)
	if err != nil {
		return fmt.Errorf("app %s: access logger: %w", app.Name, err)
	}
	defer func() { _ = d.Close() }() // a directory opened read-only
	dfd := int(d.Fd())
	name := AccessModule + ".py"
	tmp := "." + name + "." + strconv.Itoa(unix.Getpid())
	_ = unix.Unlinkat(dfd, tmp, 0) // a leftover of a killed run; absent is fine
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("app %s: access logger %s: %w", app.Name, filepath.Join(dir, tmp), err)
	}
	werr := writeAll(fd, accessModule)
	if cerr := unix.Close(fd); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = unix.Renameat(dfd, tmp, dfd, name)
	}
	if werr != nil {
		_ = unix.Unlinkat(dfd, tmp, 0) // best effort: the error below is the one that counts
		return fmt.Errorf("app %s: access logger %s: %w", app.Name, filepath.Join(dir, name), werr)
	}
	return nil
}

// writeAll writes b to fd, retrying short writes.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// WithAccessLogger returns the argv of a master (Argv) with
// --logger-class AccessClass before its last argument, the WSGI target:
// after the user's args, so it wins over a --logger-class of theirs, which
// AccessEnv hands to the class to subclass.
func WithAccessLogger(argv []string) []string {
	if len(argv) == 0 {
		return argv
	}
	last := len(argv) - 1
	out := make([]string, 0, len(argv)+2)
	out = append(out, argv[:last]...)
	return append(out, "--logger-class", AccessClass, argv[last])
}

// AccessEnv returns env with what the logger class needs in a master of
// app whose access pipe is descriptor fd: GUNISUP_ACCESS_FD, the user's
// --logger-class (config.RouteMetrics.LoggerClass) in GUNISUP_LOGGER_CLASS,
// and app's run directory appended to PYTHONPATH (after the user's own
// entries, which keep precedence).
func AccessEnv(env []string, runDir string, app *config.App, fd int) []string {
	out := make([]string, 0, len(env)+3)
	pythonPath := config.AppRunDir(runDir, app.Name)
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			if v != "" {
				pythonPath = v + ":" + pythonPath
			}
			continue
		}
		if strings.HasPrefix(kv, envAccessFD+"=") || strings.HasPrefix(kv, envLoggerClass+"=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "PYTHONPATH="+pythonPath, envAccessFD+"="+strconv.Itoa(fd))
	if c := app.Routes.LoggerClass; c != "" {
		out = append(out, envLoggerClass+"="+c)
	}
	return out
}

// AccessLine is one request as the logger class wrote it.
type AccessLine struct {
	// Worker is the pid of the worker that answered, Master its parent's.
	Worker, Master int
	// Method is the request method, Path its raw path without the query
	// (cut at 2048 bytes; bytes outside printable ASCII read '?').
	Method, Path string
	// Status is the response's status code.
	Status int
	// Duration is the time the worker spent on the request.
	Duration time.Duration
	// Queue is the time between the proxy's X-Request-Start stamp and the
	// worker taking the request; -1 when the request had no such header.
	Queue time.Duration
	// Dropped counts the lines this worker could not write (a full pipe)
	// since the one before this one.
	Dropped int
}

// errAccessLine is the error of ParseAccess for a line it does not
// understand.
var errAccessLine = errors.New("malformed access line")

// ParseAccess parses one line written by the logger class (without its
// newline). It returns an error wrapping errAccessLine, quoting the line,
// for any other line.
func ParseAccess(line []byte) (AccessLine, error) {
	var a AccessLine
	var f [8][]byte
	rest := line
	for i := range f {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			return a, fmt.Errorf("%w: %q", errAccessLine, line)
		}
		f[i], rest = rest[:j], rest[j+1:]
	}
	if string(f[0]) != "1" || len(rest) == 0 {
		return a, fmt.Errorf("%w: %q", errAccessLine, line)
	}
	worker, ok1 := atoi(f[1])
	master, ok0 := atoi(f[2])
	status, ok2 := atoi(f[4])
	dur, ok3 := atoi(f[5])
	dropped, ok5 := atoi(f[7])
	queue, ok4 := atoi(f[6])
	if string(f[6]) == "-1" {
		queue, ok4 = -1, true
	}
	if !ok0 || !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || len(f[3]) == 0 || status < 100 || status > 999 {
		return a, fmt.Errorf("%w: %q", errAccessLine, line)
	}
	a = AccessLine{Worker: worker, Master: master, Method: string(f[3]), Path: string(rest), Status: status,
		Duration: time.Duration(dur) * time.Microsecond, Queue: -1, Dropped: dropped}
	if queue >= 0 {
		a.Queue = time.Duration(queue) * time.Microsecond
	}
	return a, nil
}

// atoi parses a non-negative decimal of at most 18 digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
