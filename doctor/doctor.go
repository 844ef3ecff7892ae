// Package doctor probes this host and this process for every supervisor
// feature that has a fallback (BPF and rename steering, sock_diag queue
// depths, socket take-over with pidfd_getfd, cgroup v2 delegation, the child
// subreaper, switching to each configured user, systemd notification) and
// says, for each, whether it works and, when it does not, why and what
// would turn it on (a capability, a unit line, a kernel setting).
//
// Each probe does what the feature does, on throw-away objects (a BPF
// program attached to a socket on 127.0.0.1:0, a Unix socket renamed in a
// temporary directory, a probe cgroup created and removed), so its verdict
// holds for the same process afterwards. No probe starts a process: the
// daemon runs them while its reaper owns every child.
package doctor

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gunisup/supervisor/config"
)

// Feature names, as `supervisor doctor` prints them and as the label of
// supervisor_feature_enabled.
const (
	BPFSteering      = "bpf_steering"
	RenameSteering   = "rename_steering"
	SockDiag         = "sock_diag"
	PidfdGetfd       = "pidfd_getfd"
	CgroupDelegation = "cgroup_delegation"
	Subreaper        = "subreaper"
	UserSwitch       = "user_switch"
	SystemdNotify    = "systemd_notify"
)

// Features lists every feature name in report order.
func Features() []string {
	return []string{BPFSteering, RenameSteering, SockDiag, PidfdGetfd, CgroupDelegation, Subreaper, UserSwitch, SystemdNotify}
}

// State is a probe's verdict.
type State int

const (
	// Works: the feature is available to this process.
	Works State = iota
	// Degraded: the feature is unavailable; the supervisor uses its
	// fallback (Result.Why says which, Result.Fix how to turn it on).
	Degraded
	// Unused: nothing here asks for the feature (no user to switch to,
	// not started by systemd with Type=notify).
	Unused
)

func (s State) String() string {
	switch s {
	case Works:
		return "works"
	case Degraded:
		return "degraded"
	}
	return "unused"
}

// Result is one probe's verdict.
type Result struct {
	Feature string
	// Subject narrows Feature to one object (a user name for UserSwitch);
	// "" for the host-wide features.
	Subject string
	State   State
	// Why is the reason for Degraded or Unused, or what a working feature
	// relies on; Fix is what would turn a degraded feature on ("" otherwise).
	Why string
	Fix string
}

// Name is Feature, or "Feature(Subject)" for a narrowed result.
func (r Result) Name() string {
	if r.Subject == "" {
		return r.Feature
	}
	return r.Feature + "(" + r.Subject + ")"
}

// Report is every probe's result, in Features order.
type Report []Result

// Options says what to probe for besides the host itself.
type Options struct {
	// Config, when set, adds one UserSwitch result per configured user and
	// probes rename steering in its run_dir; nil probes the host only.
	Config *config.Config
	// NotifySocket is systemd's NOTIFY_SOCKET as the process received it
	// ("" when systemd did not start it as Type=notify).
	NotifySocket string
	// PID is the supervisor's pid (1: it is the container's init).
	PID int
}

// Run probes every feature and returns the report. It never fails: a probe
// that cannot tell reports its feature degraded, with the error as Why.
func Run(opts Options) Report {
	c := readCaps()
	r := Report{
		probeBPF(c),
		probeRename(opts.Config),
		probeSockDiag(),
		probePidfdGetfd(c, opts.Config, opts.PID),
		probeCgroup(),
		probeSubreaper(opts.PID),
	}
	r = append(r, probeUsers(c, opts.Config)...)
	return append(r, probeNotify(opts.NotifySocket))
}

// Degraded returns the degraded results.
func (r Report) Degraded() []Result {
	var out []Result
	for _, res := range r {
		if res.State == Degraded {
			out = append(out, res)
		}
	}
	return out
}

// Enabled returns, for every name of Features, whether it works: false when
// any of its results is degraded or when none works (unused).
func (r Report) Enabled() map[string]bool {
	out := map[string]bool{}
	for _, f := range Features() {
		works := false
		for _, res := range r {
			if res.Feature != f {
				continue
			}
			if res.State == Degraded {
				works = false
				break
			}
			works = works || res.State == Works
		}
		out[f] = works
	}
	return out
}

// Lookup returns the result of feature (the first one for a narrowed
// feature with subject "") and whether the report has it.
func (r Report) Lookup(feature, subject string) (Result, bool) {
	i := slices.IndexFunc(r, func(res Result) bool {
		return res.Feature == feature && (subject == "" || res.Subject == subject)
	})
	if i < 0 {
		return Result{}, false
	}
	return r[i], true
}

// Write prints one line per result: "NAME: works (why)", "NAME: unused
// (why)" or "NAME: degraded: WHY; fix: FIX".
func (r Report) Write(w io.Writer) error {
	for _, res := range r {
		line := res.Name() + ": " + res.State.String()
		switch {
		case res.State == Degraded:
			line += ": " + res.Why
			if res.Fix != "" {
				line += "; fix: " + res.Fix
			}
		case res.Why != "":
			line += " (" + res.Why + ")"
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return fmt.Errorf("doctor: write report: %w", err)
		}
	}
	return nil
}

// Summary returns the names of the working and of the degraded results,
// comma-separated, for the one log line at start.
func (r Report) Summary() (works, degraded string) {
	var ok, bad []string
	for _, res := range r {
		switch res.State {
		case Works:
			ok = append(ok, res.Name())
		case Degraded:
			bad = append(bad, res.Name()+" ("+res.Why+"; fix: "+res.Fix+")")
		}
	}
	return strings.Join(ok, ","), strings.Join(bad, "; ")
}
