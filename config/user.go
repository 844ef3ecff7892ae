package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Identity is who an app's processes (and its health commands) run as.
type Identity struct {
	// User and Group as written; "" when the key is not set.
	User  string `key:"user"`
	Group string `key:"group"`
	// UID and GID the app runs with: User's uid and Group's gid (default
	// User's primary group) when set, else the supervisor's effective ids
	// at load.
	UID int `key:"user"`
	GID int `key:"group"`
	// Groups are the supplementary groups: User's groups in the group
	// database (including GID); only GID when Group is set without User.
	Groups []int `key:"user"`
	// Name and Home are User's login name and home directory (HOME, USER
	// and LOGNAME of the app); "" when User is not set.
	Name string `key:"user"`
	Home string `key:"user"`
	// AllowRoot accepts an app that runs as uid 0.
	AllowRoot bool `key:"allow_root"`
}

// Switch reports whether the child changes its credentials before exec
// (user or group is set).
func (id Identity) Switch() bool { return id.User != "" || id.Group != "" }

// Limits are process attributes applied to an app's processes before exec.
type Limits struct {
	// Umask is the file mode creation mask; nil keeps the supervisor's.
	Umask *int `key:"umask"`
	// Nice is the scheduling priority (-20..19); nil keeps the supervisor's.
	Nice *int `key:"nice"`
	// OOMScoreAdj is written to /proc/PID/oom_score_adj (-1000..1000); nil
	// keeps the supervisor's.
	OOMScoreAdj *int `key:"oom_score_adjust"`
	// Rlimits set both the soft and the hard limit, in the order of
	// RlimitNames.
	Rlimits []Rlimit `key:"rlimits"`
}

// Rlimit is one resource limit of an app.
type Rlimit struct {
	// Name is the key as written (nofile, nproc, core, as, ...).
	Name string
	// Resource is the RLIMIT_* constant.
	Resource int
	// Value is the soft and hard limit; RlimInfinity means unlimited.
	Value uint64
}

// RlimInfinity is the value of an "unlimited" rlimit.
const RlimInfinity = math.MaxUint64

// RlimitNames maps the keys of an app's rlimits table to RLIMIT_* resources.
var RlimitNames = map[string]int{
	"as":      unix.RLIMIT_AS,
	"core":    unix.RLIMIT_CORE,
	"cpu":     unix.RLIMIT_CPU,
	"data":    unix.RLIMIT_DATA,
	"fsize":   unix.RLIMIT_FSIZE,
	"memlock": unix.RLIMIT_MEMLOCK,
	"nofile":  unix.RLIMIT_NOFILE,
	"nproc":   unix.RLIMIT_NPROC,
	"stack":   unix.RLIMIT_STACK,
}

// identity reads user, group and allow_root, and refuses an app that would
// run as root without allow_root.
func (p *parser) identity(t *table, a *App) {
	id := Identity{UID: os.Geteuid(), GID: os.Getegid()}
	t.boolean("allow_root", &id.AllowRoot)
	userOK := true
	if t.str("user", &id.User) {
		userOK = p.resolveUser(t, &id)
	}
	if t.str("group", &id.Group) {
		gid, err := lookupGroup(id.Group)
		if err != nil {
			t.errf("group", "%v", err)
			userOK = false
		} else {
			id.GID = gid
			if id.User == "" {
				id.Groups = []int{gid}
			} else if !slices.Contains(id.Groups, gid) {
				id.Groups = append(id.Groups, gid)
			}
		}
	}
	a.Identity = id
	if userOK && id.UID == 0 && !id.AllowRoot {
		who := "the supervisor runs as root and user is not set"
		if id.User != "" {
			who = fmt.Sprintf("user %q is uid 0", id.User)
		}
		p.errf(t.path, "app %q would run as root (%s): set user to an unprivileged account, or allow_root = true", a.Name, who)
	}
}

// resolveUser fills id from the user key's account; false when it is unknown.
func (p *parser) resolveUser(t *table, id *Identity) bool {
	if id.User == "" {
		t.errf("user", "must not be empty (leave it out to run as the supervisor's user)")
		return false
	}
	u, err := findUser(id.User)
	if err != nil {
		t.errf("user", "%v", err)
		return false
	}
	uid, err1 := parseID("user", id.User, u.Uid)
	gid, err2 := parseID("group", id.User, u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		t.errf("user", "%v", err)
		return false
	}
	gids, err := u.GroupIds()
	if err != nil {
		t.errf("user", "groups of user %q: %v", id.User, err)
		return false
	}
	id.UID, id.GID, id.Name, id.Home = uid, gid, u.Username, u.HomeDir
	id.Groups = []int{gid}
	for _, g := range gids {
		n, err := parseID("group", g, g)
		if err != nil {
			t.errf("user", "groups of user %q: %v", id.User, err)
			return false
		}
		if !slices.Contains(id.Groups, n) {
			id.Groups = append(id.Groups, n)
		}
	}
	return true
}

// findUser looks up a user name or numeric uid that must exist.
func findUser(s string) (*user.User, error) {
	var u *user.User
	var err error
	if isDigits(s) {
		u, err = user.LookupId(s)
	} else {
		u, err = user.Lookup(s)
	}
	var unknownName user.UnknownUserError
	var unknownID user.UnknownUserIdError
	switch {
	case err == nil:
		return u, nil
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		return nil, fmt.Errorf("no such user %q", s)
	}
	return nil, fmt.Errorf("looking up user %q: %w", s, err)
}

// limits reads umask, nice, oom_score_adjust and the rlimits table.
func (p *parser) limits(t *table, a *App) {
	var l Limits
	var mask os.FileMode
	if t.octal("umask", &mask) {
		m := int(mask)
		l.Umask = &m
	}
	var n int
	if t.integer("nice", &n, -20, 19) {
		l.Nice = &n
	}
	var oom int
	if t.integer("oom_score_adjust", &oom, -1000, 1000) {
		l.OOMScoreAdj = &oom
	}
	if rt := t.sub("rlimits"); rt != nil {
		l.Rlimits = rlimits(rt)
	}
	a.Limits = l
}

// rlimits reads each key of an rlimits table: a non-negative integer or
// "unlimited", in the order of the sorted names.
func rlimits(t *table) []Rlimit {
	var out []Rlimit
	for _, name := range slices.Sorted(maps.Keys(RlimitNames)) {
		v, ok := t.get(name)
		if !ok {
			continue
		}
		r := Rlimit{Name: name, Resource: RlimitNames[name]}
		switch x := v.(type) {
		case int64:
			if x < 0 {
				t.errf(name, "must be >= 0 or \"unlimited\", got %d", x)
				continue
			}
			r.Value = uint64(x)
		case string:
			if x != "unlimited" {
				t.errf(name, "want an integer or \"unlimited\", got %q", x)
				continue
			}
			r.Value = RlimInfinity
		default:
			t.typeErr(name, "integer or \"unlimited\"", v)
			continue
		}
		out = append(out, r)
	}
	t.finish()
	return out
}

// octal reads an octal permission string such as "0660" (at most 0777).
func (t *table) octal(name string, dst *os.FileMode) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	s, isStr := v.(string)
	if !isStr {
		t.errf(name, "want an octal string such as \"0660\", got %s", typeName(v))
		return false
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		t.errf(name, "invalid mode %q: want an octal string such as \"0660\"", s)
		return false
	}
	*dst = os.FileMode(n)
	return true
}

// Env template references an env value may hold.
const (
	tmplApp     = "{app}"
	tmplRelease = "{release}"
)

// ExpandEnv returns value with {app} replaced by app and {release} by the
// generation's resolved release directory; other text, braces included,
// is kept as written.
func ExpandEnv(value, app, release string) string {
	if !strings.Contains(value, "{") {
		return value
	}
	return strings.NewReplacer(tmplApp, app, tmplRelease, release).Replace(value)
}

// AppRunDir is the directory under run_dir that belongs to app's user: the
// Gunicorn master writes its pidfile (and USR2's pidfile.2) there.
func AppRunDir(runDir, app string) string {
	return filepath.Join(runDir, "apps", app)
}

// NeverPassed reports whether the supervisor's variable name must never
// reach an app: systemd's protocol variables (NOTIFY_SOCKET, LISTEN_*,
// WATCHDOG_*) belong to the supervisor, which gives apps their own sockets;
// SUPCTL_SOCKET and SUPERVISOR_UPGRADE_STATE are the supervisor's own;
// Gunicorn's GUNICORN_FD and GUNICORN_PID would confuse a fresh master.
func NeverPassed(name string) bool {
	switch name {
	case "NOTIFY_SOCKET", "SUPCTL_SOCKET", "SUPERVISOR_UPGRADE_STATE", "GUNICORN_FD", "GUNICORN_PID":
		return true
	}
	return strings.HasPrefix(name, "LISTEN_") || strings.HasPrefix(name, "WATCHDOG_")
}

// passEnv reads [supervisor] pass_env: variable names, none of them one
// that NeverPassed refuses.
func passEnv(t *table) []string {
	var names []string
	if !t.strList("pass_env", &names) {
		return nil
	}
	key := t.key("pass_env")
	var out []string
	for i, n := range names {
		switch {
		case !validEnvName(n):
			t.p.elemErrf(key, i, "invalid variable name %q", n)
		case NeverPassed(n):
			t.p.elemErrf(key, i, "%s is the supervisor's own and never passed to apps", n)
		default:
			out = append(out, n)
		}
	}
	return out
}
