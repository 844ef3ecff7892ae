package apm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gunisup/supervisor/gunicorn"
)

// maxWindowSeconds bounds the per-second ring of a generation (and so the
// comparison window it can serve): an hour.
const maxWindowSeconds = 3600

// Usage is what a generation's live workers use at one moment.
type Usage struct {
	// CPU is their user and system time.
	CPU time.Duration
	// RSS is their resident memory in bytes.
	RSS uint64
	// Workers is how many there are.
	Workers int
}

// usageSample is a Usage read at a time.
type usageSample struct {
	at time.Time
	u  Usage
}

// genSecond is one second of a generation's requests.
type genSecond struct {
	at                                     int64
	requests, errors, satisfied, tolerated uint32
	lat                                    hist
	routes                                 map[string]*hist
}

// Gen is one generation's figures: a ring of its last seconds (enough for
// the app's comparison window) and samples of its workers' usage. Its
// fields are guarded by its app's lock.
type Gen struct {
	app     *App
	ID      int
	Master  int
	Release string
	Started time.Time

	usage   func() (Usage, bool)
	ring    []genSecond
	samples []usageSample
}

// ringLen is the ring length that holds a window of w.
func ringLen(w time.Duration) int {
	return min(max(int(w/time.Second), 1), maxWindowSeconds) + 2
}

// add counts one request of route in second sec.
func (g *Gen) add(sec int64, route string, l gunicorn.AccessLine, sat, tol uint32) {
	s := &g.ring[sec%int64(len(g.ring))]
	if s.at != sec {
		for _, h := range s.routes {
			*h = hist{}
		}
		s.at, s.requests, s.errors, s.satisfied, s.tolerated, s.lat = sec, 0, 0, 0, 0, hist{}
	}
	s.requests++
	if l.Status >= 500 {
		s.errors++
	}
	s.satisfied += sat
	s.tolerated += tol
	b := histBucket(l.Duration)
	s.lat[b]++
	if s.routes == nil {
		s.routes = make(map[string]*hist)
	}
	h := s.routes[route]
	if h == nil {
		h = new(hist)
		s.routes[route] = h
	}
	h[b]++
}

// window is a generation's requests over a span of time.
type window struct {
	gen                                    *Gen
	seconds                                float64
	requests, errors, satisfied, tolerated uint64
	lat                                    hist
	routes                                 map[string]*hist
	// cpu is the workers' CPU use as a fraction of one core per worker,
	// rss their mean resident bytes; usageOK is false without samples.
	cpu     float64
	rss     uint64
	usageOK bool
}

// window sums g's seconds in [from, to).
func (g *Gen) window(from, to int64) *window {
	w := &window{gen: g, seconds: float64(to - from), routes: make(map[string]*hist)}
	for i := range g.ring {
		s := &g.ring[i]
		if s.at < from || s.at >= to || s.requests == 0 {
			continue
		}
		w.requests += uint64(s.requests)
		w.errors += uint64(s.errors)
		w.satisfied += uint64(s.satisfied)
		w.tolerated += uint64(s.tolerated)
		w.lat.merge(&s.lat)
		for r, h := range s.routes {
			if w.routes[r] == nil {
				w.routes[r] = new(hist)
			}
			w.routes[r].merge(h)
		}
	}
	return w
}

// setUsage fills w's CPU and memory from two samples.
func (w *window) setUsage(from, to usageSample) {
	d := to.at.Sub(from.at).Seconds()
	if to.u.Workers == 0 || d <= 0 {
		return
	}
	w.cpu = (to.u.CPU - from.u.CPU).Seconds() / d / float64(to.u.Workers)
	w.cpu = max(w.cpu, 0) // a worker that exited took its CPU time along
	w.rss = to.u.RSS / uint64(to.u.Workers)
	w.usageOK = true
}

// sample reads g's usage now (ok false without a reader or when it fails)
// and keeps it among g's samples, dropping those older than keep.
func (g *Gen) sample(now time.Time, keep time.Duration) (usageSample, bool) {
	if g.usage == nil {
		return usageSample{}, false
	}
	u, ok := g.usage()
	if !ok {
		return usageSample{}, false
	}
	s := usageSample{at: now, u: u}
	g.app.mu.Lock()
	defer g.app.mu.Unlock()
	i := 0
	for i < len(g.samples)-1 && now.Sub(g.samples[i+1].at) >= keep {
		i++
	}
	g.samples = append(g.samples[i:], s)
	return s, true
}

// sampleAt returns g's first sample taken at or after t, else its latest
// (guarded by the app's lock).
func (g *Gen) sampleAt(t time.Time) (usageSample, bool) {
	for _, s := range g.samples {
		if !s.at.Before(t) {
			return s, true
		}
	}
	if len(g.samples) == 0 {
		return usageSample{}, false
	}
	return g.samples[len(g.samples)-1], true
}

// Read records the access lines of g read from r (the read end of the
// generation's pipe) until EOF. A line it does not understand is counted
// as dropped. It returns nil at EOF, else the read error.
func (g *Gen) Read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	long := false
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			long = true
			continue
		case long:
			long = false
			g.app.lost(1)
		case len(line) > 0 && line[len(line)-1] == '\n':
			l, perr := gunicorn.ParseAccess(line[:len(line)-1])
			if perr != nil {
				g.app.lost(1)
			} else {
				g.app.record(g, l, g.app.set.now())
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("app %s generation %d: access pipe: %w", g.app.name, g.ID, err)
		}
	}
}
