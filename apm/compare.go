package apm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// minRouteRequests is how many requests a route needs on both sides of a
// comparison for its p99 to be compared.
const minRouteRequests = 5

// comparison is a new generation measured against the one it replaced.
type comparison struct {
	oldID, newID int
	at, due      time.Time
	old          *window
	newGen       *Gen
	start        usageSample
	startOK      bool
	line         string
}

// Swapped records that generation newID took over from oldID at now: the
// old one's last compare_window is summed at once, and the new one's first
// window is compared with it once the window has passed (Comparison).
// It returns the window, 0 when there is nothing to compare (either
// generation unknown, or route metrics off).
func (a *App) Swapped(oldID, newID int) time.Duration {
	now := a.set.now()
	a.mu.Lock()
	old, cur := a.gens[oldID], a.gens[newID]
	w := a.settings.CompareWindow
	a.mu.Unlock()
	if old == nil || cur == nil || oldID == newID || w <= 0 {
		return 0
	}
	keep := w + 2*sampleEvery(w)
	oldNow, oldOK := old.sample(now, keep)
	start, startOK := cur.sample(now, keep)
	a.mu.Lock()
	defer a.mu.Unlock()
	from := now.Add(-w)
	if from.Before(old.Started) {
		from = old.Started
	}
	win := old.window(from.Unix(), now.Unix()+1)
	win.seconds = max(now.Sub(from).Seconds(), 1)
	if first, ok := old.sampleAt(now.Add(-w)); ok && oldOK {
		win.setUsage(first, oldNow)
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	a.cmp = &comparison{oldID: oldID, newID: newID, at: now, due: now.Add(w), old: win, newGen: cur, start: start, startOK: startOK}
	c := a.cmp
	a.timer = time.AfterFunc(w, func() { a.finish(c) })
	return w
}

// finish measures c's new generation over its first window and writes
// the comparison line, unless a later swap replaced c.
func (a *App) finish(c *comparison) {
	now := a.set.now()
	w := a.window()
	end, endOK := c.newGen.sample(now, w+2*sampleEvery(w))
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmp != c {
		return
	}
	win := c.newGen.window(c.at.Unix(), now.Unix()+1)
	win.seconds = max(now.Sub(c.at).Seconds(), 1)
	if !endOK {
		end, endOK = c.newGen.sampleAt(now)
	}
	if c.startOK && endOK {
		win.setUsage(c.start, end)
	}
	c.line = compareLine(c.old, win, a.settings.ApdexT)
}

// Comparison returns the line comparing the latest new generation with the
// one it replaced, or when it will be ready; "" before any swap.
func (a *App) Comparison() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.cmp
	switch {
	case c == nil:
		return ""
	case c.line == "":
		return fmt.Sprintf("generation %d vs %d: comparison at %s (in %s)", c.newID, c.oldID,
			c.due.Format("15:04:05"), max(time.Until(c.due), 0).Round(time.Second))
	}
	return c.line
}

// compareLine is the comparison of window cur with window old: throughput,
// error rate, p50 and p99, Apdex, CPU and RSS per worker, then the routes
// whose p99 moved by half again or more and by at least t/5.
func compareLine(old, cur *window, t time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d (%s) vs %d (%s) over %s: ", cur.gen.ID, cur.gen.Release, old.gen.ID, old.gen.Release,
		time.Duration(cur.seconds*float64(time.Second)).Round(time.Second))
	fmt.Fprintf(&b, "%.1f -> %.1f req/s, errors %s -> %s, p50 %s -> %s, p99 %s -> %s, apdex %s -> %s",
		float64(old.requests)/old.seconds, float64(cur.requests)/cur.seconds,
		percent(old.errors, old.requests), percent(cur.errors, cur.requests),
		ms(old.lat.quantile(.5)), ms(cur.lat.quantile(.5)), ms(old.lat.quantile(.99)), ms(cur.lat.quantile(.99)),
		apdexOf(old), apdexOf(cur))
	fmt.Fprintf(&b, ", cpu/worker %s -> %s, rss/worker %s -> %s", cpuOf(old), cpuOf(cur), rssOf(old), rssOf(cur))
	moved := movedRoutes(old, cur, t)
	if len(moved) == 0 {
		b.WriteString("; no route's p99 moved")
	} else {
		b.WriteString("; p99 moved: " + strings.Join(moved, ", "))
	}
	return b.String()
}

// movedRoutes lists "ROUTE OLD -> NEW ms" for the routes with enough
// requests on both sides whose p99 differs by a factor of 1.5 or more and
// by at least t/5, sorted by route.
func movedRoutes(old, cur *window, t time.Duration) []string {
	var out []string
	for _, p := range pairedP99(old, cur) {
		hi, lo := max(p.old, p.cur), min(p.old, p.cur)
		if hi-lo >= t/5 && float64(hi) >= 1.5*float64(lo) {
			out = append(out, fmt.Sprintf("%s %s -> %s", p.route, ms(p.old), ms(p.cur)))
		}
	}
	sort.Strings(out)
	return out
}

// routeP99 is one route's p99 in an old and a current window.
type routeP99 struct {
	route    string
	old, cur time.Duration
}

// pairedP99 returns the p99 on both sides of each route of cur with at
// least minRouteRequests requests in both windows (in no set order).
func pairedP99(old, cur *window) []routeP99 {
	var out []routeP99
	for r, h := range cur.routes {
		o := old.routes[r]
		if o == nil || o.count() < minRouteRequests || h.count() < minRouteRequests {
			continue
		}
		out = append(out, routeP99{route: r, old: o.quantile(.99), cur: h.quantile(.99)})
	}
	return out
}

func percent(n, of uint64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(of))
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
}

func apdexOf(w *window) string {
	if w.requests == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", (float64(w.satisfied)+float64(w.tolerated)/2)/float64(w.requests))
}

func cpuOf(w *window) string {
	if !w.usageOK {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*w.cpu)
}

func rssOf(w *window) string {
	if !w.usageOK {
		return "-"
	}
	return fmt.Sprintf("%.0fMiB", float64(w.rss)/(1<<20))
}

// sampleEvery is how often Run samples generations' usage for a comparison
// window w: a quarter of it, between 1 s and 5 s.
func sampleEvery(w time.Duration) time.Duration {
	return min(max(w/4, time.Second), 5*time.Second)
}

// Run samples the usage of every generation (see App.Gen) every second
// while ctx lasts, keeping what the comparison window of its app needs;
// a generation is sampled at its app's sampleEvery.
func (s *Set) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := make(map[*Gen]time.Time)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			seen := make(map[*Gen]time.Time, len(last))
			for _, g := range s.liveGens() {
				w := g.app.window()
				t, ok := last[g]
				if !ok || now.Sub(t) >= sampleEvery(w) {
					g.sample(s.now(), w+2*sampleEvery(w))
					t = now
				}
				seen[g] = t
			}
			last = seen
		}
	}
}

// liveGens returns the generations of every app whose master runs.
func (s *Set) liveGens() []*Gen {
	s.mu.Lock()
	apps := make([]*App, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.mu.Unlock()
	var out []*Gen
	for _, a := range apps {
		a.mu.Lock()
		for _, g := range a.gens {
			out = append(out, g)
		}
		a.mu.Unlock()
	}
	return out
}

// window is the app's comparison window.
func (a *App) window() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.settings.CompareWindow
}
