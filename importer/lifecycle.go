package importer

import (
	"fmt"
	"strconv"
	"strings"
)

// restart writes autostart and restart (autorestart, exitcodes).
func (p *progConv) restart() {
	if v, line, ok := p.get("autostart"); ok {
		if b, valid := boolOpt(v); valid {
			p.t.set("autostart", strconv.FormatBool(b))
		} else {
			p.warnAt(line, "autostart", fmt.Sprintf("%q is not a boolean: not mapped", v))
		}
	}
	codes, cline, hasCodes := p.get("exitcodes")
	v, line, ok := p.get("autorestart")
	mode := strings.ToLower(strings.TrimSpace(v))
	if !ok {
		mode = "unexpected"
	}
	switch mode {
	case "unexpected":
		note := "autorestart=unexpected (supervisord's default): restarted after an exit with a status other than 0"
		p.t.set("restart", quote("on-failure"), note)
		if hasCodes && strings.ReplaceAll(codes, " ", "") != "0" {
			p.warnAt(cline, "exitcodes", fmt.Sprintf("%s: only 0 counts as expected (on-failure restarts after any other status or a signal)", codes))
			p.t.comment("exitcodes = " + codes + ": not mapped, only 0 is an expected exit")
		}
	case "true":
		p.t.set("restart", quote("always"))
	case "false":
		p.t.set("restart", quote("never"))
	default:
		p.warnAt(line, "autorestart", fmt.Sprintf("%q is not true, false or unexpected: restart left at its default (always)", v))
	}
}

// start writes start_settle (startsecs) and crash_limit (startretries).
func (p *progConv) start() {
	if v, line, ok := p.get("startsecs"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 0:
			p.warnAt(line, "startsecs", fmt.Sprintf("%q is not a number of seconds: not mapped", v))
		case p.gunicornApp:
			p.t.comment(fmt.Sprintf("startsecs=%d: a Gunicorn app has started once a worker answers (start_timeout)", n))
		case n == 0:
			p.t.set("start_settle", quote("10ms"), "startsecs=0: the shortest settle time")
		default:
			p.t.set("start_settle", quote(fmt.Sprintf("%ds", n)), "startsecs: must run this long for its start to count")
		}
	}
	if v, line, ok := p.get("startretries"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 0:
			p.warnAt(line, "startretries", fmt.Sprintf("%q is not a count: not mapped", v))
		case n == 0:
			p.warnAt(line, "startretries", "0: the supervisor never gives up on an app; it retries with backoff")
			p.t.comment("startretries=0: not mapped; the supervisor retries with backoff (backoff_initial, backoff_max)")
		default:
			p.t.set("crash_limit", strconv.Itoa(min(n, 1000)),
				fmt.Sprintf("startretries=%d: supervisord gave up (FATAL) after that many failed starts; here more than\ncrash_limit exits within crash_window mark the app failed, and it is still retried every backoff_max", n))
		}
	}
}

// stop writes stop_signal and stop_timeout.
func (p *progConv) stop() {
	if v, line, ok := p.get("stopsignal"); ok {
		sig := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(v)), "SIG")
		switch sig {
		case "TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL":
			p.t.set("stop_signal", quote(sig))
		default:
			p.warnAt(line, "stopsignal", fmt.Sprintf("%s: not one of TERM INT QUIT HUP USR1 USR2 KILL: not mapped", v))
			p.t.comment("stopsignal = " + v + ": not mapped")
		}
	}
	if v, line, ok := p.get("stopwaitsecs"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil || n < 0:
			p.warnAt(line, "stopwaitsecs", fmt.Sprintf("%q is not a number of seconds: not mapped", v))
		case n == 0:
			p.t.set("stop_timeout", quote("10ms"), "stopwaitsecs=0: KILL almost at once")
		default:
			p.t.set("stop_timeout", quote(fmt.Sprintf("%ds", n)), "stopwaitsecs: then KILL to the whole process tree")
		}
	}
	for _, k := range []string{"stopasgroup", "killasgroup"} {
		if v, _, ok := p.get(k); ok {
			p.t.comment(fmt.Sprintf("%s=%s: the supervisor always signals the app's whole process tree", k, v))
		}
	}
}

// instancesAndNames writes instances (numprocs) and notes process_name.
func (p *progConv) instancesAndNames() {
	if p.instances > 1 {
		p.t.set("instances", strconv.Itoa(p.instances),
			fmt.Sprintf("numprocs=%d: apps %s:0 to %s:%d; %%(process_num)d became {instance} (zero padding is not kept)",
				p.instances, p.name, p.name, p.instances-1))
		if o, ok := p.s.get("numprocs_start"); ok && strings.TrimSpace(o.value) != "0" {
			p.warnAt(o.line, "numprocs_start", fmt.Sprintf("%s: instances are numbered from 0", o.value))
		}
	}
	if p.copyOf > 0 {
		p.t.comment(fmt.Sprintf("one of numprocs=%d Gunicorn programs, each an app with its own sockets;\nconsider one app with more workers", p.copyOf))
	}
	if o, ok := p.s.get("process_name"); ok && p.copyOf == 0 {
		p.used["process_name"] = true
		if p.instances > 1 {
			p.t.comment(fmt.Sprintf("process_name=%s: the instances are named %s:N", o.value, p.name))
		} else {
			p.t.comment(fmt.Sprintf("process_name=%s: the app is named %s", o.value, p.name))
		}
	}
}

// unmapped writes every key not converted as a comment, with a warning.
func (p *progConv) unmapped() {
	for _, o := range p.s.keys {
		if p.used[o.key] {
			continue
		}
		p.used[o.key] = true
		p.warnAt(o.line, o.key, "not mapped")
		p.t.comment(fmt.Sprintf("not mapped: %s = %s", o.key, o.value))
	}
}
