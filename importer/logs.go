package importer

import (
	"fmt"
	"strconv"
	"strings"
)

// logTarget is where one stream of a program went under supervisord.
type logTarget struct {
	value string // as written, expanded; "" when absent
	line  int
	set   bool
}

// kind classifies a target: "stdout", "none", "auto" or "file".
func (l logTarget) kind() string {
	switch strings.TrimSpace(l.value) {
	case "", "AUTO":
		return "auto"
	case "NONE":
		return "none"
	case "/dev/stdout", "/dev/stderr", "/proc/self/fd/1", "/proc/self/fd/2":
		return "stdout"
	}
	return "file"
}

// logs writes log, log_file, log_max_size and log_max_files from the
// stdout_* and stderr_* keys and redirect_stderr.
func (p *progConv) logs() {
	var out, errT logTarget
	out.value, out.line, out.set = p.get("stdout_logfile")
	errT.value, errT.line, errT.set = p.get("stderr_logfile")
	redirect := false
	if v, _, ok := p.get("redirect_stderr"); ok {
		redirect, _ = boolOpt(v)
	}
	switch out.kind() {
	case "auto":
		p.t.set("log", quote("stdout"), "stdout_logfile=AUTO (supervisord's childlogdir): the supervisor's stdout (journald)")
	case "none":
		p.t.set("log", quote("none"))
	case "stdout":
		p.t.set("log", quote("stdout"))
	default:
		p.t.set("log", quote("file"))
		defer p.rotation()
		p.t.set("log_file", quote(p.instanceLogFile(out)), "stdout and stderr, each line marked with its stream")
	}
	if out.kind() != "file" {
		for _, k := range []string{"stdout_logfile_maxbytes", "stdout_logfile_backups"} {
			if o, ok := p.s.get(k); ok {
				p.used[k] = true
				p.t.comment(fmt.Sprintf("%s=%s: rotation applies to log = \"file\" only", k, o.value))
			}
		}
	}
	if !redirect && errT.set && errT.kind() != "auto" && errT.value != out.value {
		msg := fmt.Sprintf("%s: stderr goes where stdout goes (log), its lines marked stderr", errT.value)
		if out.kind() == "file" {
			msg = fmt.Sprintf("%s: stderr goes to log_file with stdout, its lines marked stderr", errT.value)
		}
		p.warnAt(errT.line, "stderr_logfile", msg)
		p.t.comment("stderr_logfile = " + errT.value + ": not mapped, " + strings.SplitN(msg, ": ", 2)[1])
	}
	for _, k := range []string{"stderr_logfile_maxbytes", "stderr_logfile_backups"} {
		if o, ok := p.s.get(k); ok && (redirect || !errT.set) {
			p.used[k] = true
			p.t.comment(fmt.Sprintf("%s=%s: one file holds both streams", k, o.value))
		}
	}
}

// instanceLogFile returns the log file path; an app with instances needs
// {instance} in it, added before the extension when missing.
func (p *progConv) instanceLogFile(out logTarget) string {
	v := strings.TrimSpace(out.value)
	if p.instances <= 1 || strings.Contains(v, instanceMark) {
		return v
	}
	dot := strings.LastIndexByte(v, '.')
	if dot <= strings.LastIndexByte(v, '/') {
		dot = len(v)
	}
	fixed := v[:dot] + "-" + instanceMark + v[dot:]
	p.warnAt(out.line, "stdout_logfile", fmt.Sprintf("one file per instance: %s", fixed))
	return fixed
}

// rotation writes log_max_size and log_max_files from stdout_logfile_*.
func (p *progConv) rotation() {
	if v, line, ok := p.get("stdout_logfile_maxbytes"); ok {
		mib, err := parseMiB(v)
		switch {
		case err != nil:
			p.warnAt(line, "stdout_logfile_maxbytes", fmt.Sprintf("%v: not mapped", err))
		case mib == 0:
			p.warnAt(line, "stdout_logfile_maxbytes", "0 (never rotate): the file is rotated at log_max_size (default 100 MiB)")
			p.t.comment("stdout_logfile_maxbytes=0: not mapped; use an external logrotate with `supctl logs APP --reopen`")
		default:
			p.t.set("log_max_size", strconv.Itoa(mib), "stdout_logfile_maxbytes="+v+" (MiB, rounded up)")
		}
	}
	if v, line, ok := p.get("stdout_logfile_backups"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 0:
			p.warnAt(line, "stdout_logfile_backups", fmt.Sprintf("%q is not a count: not mapped", v))
		case n == 0:
			p.warnAt(line, "stdout_logfile_backups", "0 (no backups): here log_max_files = 0 keeps every rotated file; set to 1")
			p.t.set("log_max_files", "1", "stdout_logfile_backups=0: the fewest rotated files kept")
		default:
			p.t.set("log_max_files", strconv.Itoa(min(n, 1000)))
		}
	}
}

// parseMiB parses supervisord's byte sizes (50MB, 1GB, 1024KB, 1048576)
// into MiB, rounded up.
func parseMiB(v string) (int, error) {
	s := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for suffix, m := range map[string]int64{"KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30} {
		if t, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(t), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", v)
	}
	bytes := n * mult
	return int((bytes + (1<<20 - 1)) >> 20), nil
}
