package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/doctor"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/metrics"
)

// check runs `supervisor check`: the configuration at path must load (exit
// 2 with its errors otherwise); each app relying on a feature that is
// degraded on this host gets a warning on stderr, which leaves the exit
// status 0.
func check(path string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return exitcode.New(ExitConfig, err)
	}
	if w := cfg.Supervisor.HTTPWebConfig; w != "" {
		if err := metrics.CheckWebConfig(w); err != nil {
			return exitcode.New(ExitConfig, fmt.Errorf("%s: [supervisor] http_web_config: %w", cfg.Path, err))
		}
	}
	report := doctor.Run(doctor.Options{Config: cfg, PID: os.Getpid()})
	for _, w := range relianceWarnings(cfg, report) {
		fmt.Fprintf(stderr, "%s: warning: %s\n", cfg.Path, w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d apps)\n", cfg.Path, len(cfg.Apps))
	return nil
}

// runDoctor runs `supervisor doctor`: it probes the host (and the users of
// the configuration at path, which may be missing unless explicit is set)
// and prints the report. It returns nil when every feature works or is
// unused, an exitcode.Error with ExitDegraded when one is degraded, or
// ExitConfig for a configuration that does not load.
func runDoctor(path string, explicit bool, stdout io.Writer) error {
	var cfg *config.Config
	if _, err := os.Stat(path); explicit || !errors.Is(err, fs.ErrNotExist) {
		if cfg, err = config.Load(path); err != nil {
			return exitcode.New(ExitConfig, err)
		}
	}
	report := doctor.Run(doctor.Options{Config: cfg, NotifySocket: os.Getenv("NOTIFY_SOCKET"), PID: os.Getpid()})
	if err := report.Write(stdout); err != nil {
		return exitcode.New(ExitFailure, err)
	}
	if bad := report.Degraded(); len(bad) > 0 {
		names := make([]string, len(bad))
		for i, r := range bad {
			names[i] = r.Name()
		}
		return exitcode.New(ExitDegraded, fmt.Errorf("degraded: %s", strings.Join(names, ", ")))
	}
	return nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// relianceWarnings returns one line per app and feature it relies on that
// report says is degraded: BPF steering for a steered TCP listener, rename
// steering and sock_diag for a Unix one, switching to its user.
func relianceWarnings(cfg *config.Config, report doctor.Report) []string {
	var out []string
	warn := func(app *config.App, what, feature, subject string) {
		if r, ok := report.Lookup(feature, subject); ok && r.State == doctor.Degraded {
			out = append(out, fmt.Sprintf("app %s: %s relies on %s, degraded on this host: %s; fix: %s", app.Name, what, r.Name(), r.Why, r.Fix))
		}
	}
	for _, app := range cfg.Apps {
		steered := app.Steering == config.SteeringAuto && !listen.HasSystemd(app)
		for _, l := range app.Listen {
			switch {
			case l.Network == config.NetTCP && steered:
				warn(app, "listen "+l.Raw, doctor.BPFSteering, "")
			case l.Network == config.NetUnix:
				if steered {
					warn(app, "listen "+l.Raw, doctor.RenameSteering, "")
				}
				warn(app, "listen "+l.Raw+" (queue depth)", doctor.SockDiag, "")
			}
		}
		if app.Identity.Switch() {
			warn(app, "its user", doctor.UserSwitch, doctor.IdentityName(app.Identity))
		}
	}
	return out
}

// probeHost runs the doctor's probes for this supervisor, logs the result
// as one line, exports it as supervisor_feature_enabled and keeps the
// degraded features for `supctl status`.
func (d *Daemon) probeHost(met *metrics.Metrics) {
	report := doctor.Run(doctor.Options{Config: d.Config, NotifySocket: d.notifier.Socket(), PID: os.Getpid()})
	works, degraded := report.Summary()
	if degraded == "" {
		d.Logger.Info("doctor: every feature works", "works", works)
	} else {
		d.Logger.Warn("doctor: features degraded on this host (supervisor doctor explains)", "works", works, "degraded", degraded)
	}
	met.SetFeatures(report.Enabled())
	d.bpfWhy = bpfVerdict(report)
	for _, r := range report.Degraded() {
		d.degraded = append(d.degraded, control.Feature{Name: r.Name(), Why: r.Why, Fix: r.Fix})
	}
}

// bpfVerdict is the doctor's answer to "why can BPF steering not be used"
// for the Manager's listeners: "" when it works (or the probe was not
// run), else why and the fix, as `supervisor doctor` prints them.
func bpfVerdict(report doctor.Report) string {
	r, ok := report.Lookup(doctor.BPFSteering, "")
	if !ok || r.State != doctor.Degraded {
		return ""
	}
	if r.Fix == "" {
		return r.Why
	}
	return r.Why + "; fix: " + r.Fix
}
