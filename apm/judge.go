package apm

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gunisup/supervisor/config"
)

// Thresholds are the limits a canary generation is judged by against the
// generation serving beside it over the same seconds. A zero field takes
// its default (DefaultThresholds).
type Thresholds struct {
	// ErrorRise: the canary's error rate (5xx answers) may exceed the old
	// one's by this many points of a fraction (0.01 = 1 point).
	ErrorRise float64
	// P99Factor and P99Floor: a route's p99 is worse when it is above
	// P99Factor × the old one's AND above the old one's + P99Floor (apdex_t/5
	// when 0), on routes with enough requests on both sides.
	P99Factor float64
	P99Floor  time.Duration
	// ApdexDrop: the canary's Apdex may be this much below the old one's.
	ApdexDrop float64
	// MinRequests is how many requests the canary needs before a step may
	// end early on a worse verdict; below it, only the step's end judges.
	MinRequests uint64
}

// DefaultThresholds are the limits of Thresholds' zero fields.
var DefaultThresholds = Thresholds{ErrorRise: 0.01, P99Factor: 1.5, ApdexDrop: 0.1, MinRequests: 50}

// withDefaults fills t's zero fields, P99Floor from apdex threshold at.
func (t Thresholds) withDefaults(at time.Duration) Thresholds {
	d := DefaultThresholds
	if t.ErrorRise == 0 {
		t.ErrorRise = d.ErrorRise
	}
	if t.P99Factor == 0 {
		t.P99Factor = d.P99Factor
	}
	if t.P99Floor == 0 {
		t.P99Floor = at / 5
	}
	if t.ApdexDrop == 0 {
		t.ApdexDrop = d.ApdexDrop
	}
	if t.MinRequests == 0 {
		t.MinRequests = d.MinRequests
	}
	return t
}

// Verdict is a canary generation judged against the old one.
type Verdict struct {
	// Worse lists the limits the canary broke, one phrase each; empty: as
	// good as the old one by every measure.
	Worse []string
	// Requests is how many requests the canary answered in the window;
	// Enough is true when that reaches Thresholds.MinRequests.
	Requests uint64
	Enough   bool
	// Figures is the comparison judged by, in one line.
	Figures string
}

// OK reports whether the canary broke no limit.
func (v Verdict) OK() bool { return len(v.Worse) == 0 }

// Judge compares generations canaryID and oldID of the app over the
// seconds since from (both serve side by side then) against th. ok is
// false when either generation is unknown (ended, or route metrics off).
// Only the seconds the generations' rings hold count (compare_window).
func (a *App) Judge(oldID, canaryID int, from time.Time, th Thresholds) (v Verdict, ok bool) {
	now := a.set.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	old, cur := a.gens[oldID], a.gens[canaryID]
	if old == nil || cur == nil {
		return Verdict{}, false
	}
	f, t := from.Unix(), now.Unix()+1
	return judge(old.window(f, t), cur.window(f, t), th.withDefaults(a.settings.ApdexT), a.settings.ApdexT), true
}

// JudgeCanary is Judge with the thresholds of an app's canary limits (its
// zero fields take their defaults). A nil App (route metrics off) breaks no
// limit, its Figures saying so; a generation without route metrics (it
// exited) is worse, and Enough: the canary ends.
func (a *App) JudgeCanary(oldID, canaryID int, from time.Time, l config.CanaryLimits) Verdict {
	if a == nil {
		return Verdict{Figures: "no route metrics"}
	}
	th := Thresholds{ErrorRise: l.ErrorRise, P99Factor: l.P99Factor, ApdexDrop: l.ApdexDrop, MinRequests: uint64(l.MinRequests)}
	v, ok := a.Judge(oldID, canaryID, from, th)
	if !ok {
		return Verdict{Worse: []string{fmt.Sprintf("generation %d or %d has no route metrics (exited?)", canaryID, oldID)}, Enough: true}
	}
	return v
}

// judge is the verdict on window cur against window old, both over the
// same seconds, with th's limits (defaults filled) and Apdex threshold at.
func judge(old, cur *window, th Thresholds, at time.Duration) Verdict {
	v := Verdict{Requests: cur.requests, Enough: cur.requests >= th.MinRequests}
	oe, ce := rate(old.errors, old.requests), rate(cur.errors, cur.requests)
	if cur.requests > 0 && ce > oe+th.ErrorRise {
		v.Worse = append(v.Worse, fmt.Sprintf("error rate %.2f%% above %.2f%% + %.3g points", 100*ce, 100*oe, 100*th.ErrorRise))
	}
	v.Worse = append(v.Worse, slowerRoutes(old, cur, th)...)
	if old.requests > 0 && cur.requests > 0 {
		oa, ca := apdex(old), apdex(cur)
		if ca < oa-th.ApdexDrop {
			v.Worse = append(v.Worse, fmt.Sprintf("apdex %.2f below %.2f - %.2f", ca, oa, th.ApdexDrop))
		}
	}
	v.Figures = judgeLine(old, cur, at)
	return v
}

// slowerRoutes lists the routes with at least minRouteRequests on both
// sides whose canary p99 is above th.P99Factor × the old one's and above
// the old one's + th.P99Floor, sorted by route.
func slowerRoutes(old, cur *window, th Thresholds) []string {
	var out []string
	for _, p := range pairedP99(old, cur) {
		p0, p1 := p.old, p.cur
		if float64(p1) > th.P99Factor*float64(p0) && p1 > p0+th.P99Floor {
			out = append(out, fmt.Sprintf("%s p99 %s above %.3g × %s and %s + %s", p.route, ms(p1), th.P99Factor, ms(p0), ms(p0), ms(th.P99Floor)))
		}
	}
	sort.Strings(out)
	return out
}

// judgeLine is the figures of old and cur side by side: requests, error
// rate, p99 and Apdex (Apdex threshold at).
func judgeLine(old, cur *window, at time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "generation %d vs %d: requests %d vs %d, errors %s vs %s, p99 %s vs %s, apdex(%s) %s vs %s",
		cur.gen.ID, old.gen.ID, cur.requests, old.requests, percent(cur.errors, cur.requests), percent(old.errors, old.requests),
		ms(cur.lat.quantile(.99)), ms(old.lat.quantile(.99)), at, apdexOf(cur), apdexOf(old))
	return b.String()
}

func rate(n, of uint64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func apdex(w *window) float64 {
	return (float64(w.satisfied) + float64(w.tolerated)/2) / float64(w.requests)
}
