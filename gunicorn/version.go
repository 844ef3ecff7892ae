package gunicorn

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

// Version is a Gunicorn release's major and minor number; zero when unknown.
type Version struct{ Major, Minor int }

// HasControlSocket reports whether a master opens a control socket at a
// shared default path (Gunicorn 25.1 and later).
func (v Version) HasControlSocket() bool {
	return v.Major > 25 || (v.Major == 25 && v.Minor >= 1)
}

// Runner runs a command to completion (proc.Reaper.OutputSpec).
type Runner func(ctx context.Context, spec proc.Spec) ([]byte, proc.ExitInfo, error)

// probeTimeout bounds one version probe.
const probeTimeout = 10 * time.Second

// Prober asks a virtualenv's interpreter which Gunicorn it imports, once per
// virtualenv and gunicorn executable mtime (a reinstall changes the mtime):
// the first caller for a key runs the probe, callers meanwhile wait for it,
// later ones read the answer. It is safe for concurrent use.
type Prober struct {
	run   Runner
	mu    sync.Mutex
	cache map[probeKey]*probe
}

type probeKey struct {
	venv, bin string
	mtime     time.Time
}

type probe struct {
	done chan struct{}
	v    Version
}

// NewProber returns a Prober running its probes with run.
func NewProber(run Runner) *Prober {
	return &Prober{run: run, cache: map[probeKey]*probe{}}
}

// Version returns the Gunicorn version app's virtualenv imports, or the
// zero Version when that cannot be told (no virtualenv python, the probe
// failed, or ctx ended while waiting). as is the app's spawn without its
// command: environment, directory, credentials and attributes. The probe
// imports the app's code path, so it runs as the app's user, never as root
// unless the app does.
func (p *Prober) Version(ctx context.Context, app *config.App, as proc.Spec) Version {
	py := filepath.Join(app.Virtualenv, "bin", "python")
	if app.Virtualenv == "" || !executable(py) {
		return Version{}
	}
	key := probeKey{venv: app.Virtualenv, bin: app.GunicornBin()}
	if st, err := os.Stat(key.bin); err == nil {
		key.mtime = st.ModTime()
	}
	p.mu.Lock()
	pr, ok := p.cache[key]
	if !ok {
		pr = &probe{done: make(chan struct{})}
		p.cache[key] = pr
	}
	p.mu.Unlock()
	if !ok {
		pr.v = p.ask(ctx, py, as)
		close(pr.done)
		if ctx.Err() != nil {
			p.forget(key, pr) // cut short: ask again next time
		}
	}
	select {
	case <-pr.done:
		return pr.v
	case <-ctx.Done():
		return Version{}
	}
}

// Prefetch runs Version in the background, so that a first spawn finds the
// answer ready or in flight.
func (p *Prober) Prefetch(ctx context.Context, app *config.App, as proc.Spec) {
	go p.Version(ctx, app, as)
}

func (p *Prober) forget(key probeKey, pr *probe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cache[key] == pr {
		delete(p.cache, key)
	}
}

// ask runs the probe as spec says: py prints gunicorn.__version__.
func (p *Prober) ask(ctx context.Context, py string, spec proc.Spec) Version {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	spec.Argv = []string{py, "-c", "import gunicorn; print(gunicorn.__version__)"}
	spec.Files = nil
	out, info, err := p.run(ctx, spec)
	if err != nil || info.Code != 0 {
		return Version{}
	}
	return parseVersion(string(out))
}

// parseVersion reads "MAJOR.MINOR[.rest]"; zero when malformed.
func parseVersion(s string) Version {
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	if len(parts) < 2 {
		return Version{}
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return Version{}
	}
	return Version{Major: maj, Minor: min}
}

func executable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
