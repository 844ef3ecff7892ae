package apm

import (
	"strings"
	"sync"
)

// OtherRoute is the route of requests past the route caps.
const OtherRoute = "other"

// idSegment is what a path segment that looks like an id becomes.
const idSegment = ":id"

// template is one user route ("/api/items/:id") split into segments; a
// segment starting with ':' matches any one segment.
type template struct {
	route string
	segs  []string
}

// router maps raw paths to routes: the user's templates first, then the
// path with id-like segments collapsed (collapse), admitted while the app
// has fewer than capacity routes and total admits one more. It is not safe
// for concurrent use (App holds it under its lock).
type router struct {
	templates []template
	capacity  int
	total     *budget
	known     map[string]struct{}
}

// budget is the total number of routes every app of a Set may hold.
type budget struct {
	mu          sync.Mutex
	used, limit int
}

// take counts one more route, false when the budget is spent.
func (b *budget) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used >= b.limit {
		return false
	}
	b.used++
	return true
}

// give returns n routes to the budget.
func (b *budget) give(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

func newRouter(routes []string, capacity int, total *budget) *router {
	r := &router{capacity: capacity, total: total, known: make(map[string]struct{})}
	for _, s := range routes {
		r.templates = append(r.templates, template{route: s, segs: strings.Split(strings.Trim(s, "/"), "/")})
	}
	return r
}

// route returns path's route: a user template, the collapsed path, or
// OtherRoute once the caps are reached.
func (r *router) route(path string) string {
	if q := strings.IndexByte(path, '?'); q >= 0 {
		path = path[:q]
	}
	for _, t := range r.templates {
		if t.match(path) {
			return t.route
		}
	}
	route := collapse(path)
	if _, ok := r.known[route]; ok {
		return route
	}
	if len(r.known) >= r.capacity || !r.total.take() {
		return OtherRoute
	}
	r.known[route] = struct{}{}
	return route
}

// release gives r's routes back to the total budget (the app is gone or
// reconfigured).
func (r *router) release() {
	r.total.give(len(r.known))
	r.known = make(map[string]struct{})
}

// match reports whether path has t's segments, a ":name" segment matching
// any one non-empty segment.
func (t template) match(path string) bool {
	rest := strings.Trim(path, "/")
	for i, s := range t.segs {
		seg, tail, found := strings.Cut(rest, "/")
		if (i < len(t.segs)-1) != found {
			return false
		}
		if s != seg && (!strings.HasPrefix(s, ":") || seg == "") {
			return false
		}
		rest = tail
	}
	return true
}

// collapse returns path with each numeric, UUID or hex-id segment (at
// least 8 hex digits, one of them a decimal digit) replaced by ":id".
// A path with nothing to replace is returned as it is, without copying.
func collapse(path string) string {
	if !hasID(path) {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); {
		j := strings.IndexByte(path[i:], '/')
		end := len(path)
		if j >= 0 {
			end = i + j
		}
		seg := path[i:end]
		if isID(seg) {
			b.WriteString(idSegment)
		} else {
			b.WriteString(seg)
		}
		if end < len(path) {
			b.WriteByte('/')
		}
		i = end + 1
	}
	return b.String()
}

// hasID reports whether any segment of path is an id.
func hasID(path string) bool {
	for path != "" {
		seg, rest, _ := strings.Cut(path, "/")
		if isID(seg) {
			return true
		}
		path = rest
	}
	return false
}

// isID reports whether seg is all decimal digits, a UUID (8-4-4-4-12 hex
// digits) or at least 8 hex digits with a decimal digit among them.
func isID(seg string) bool {
	if seg == "" {
		return false
	}
	digits, hex := 0, 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex++
		case c == '-' && len(seg) == 36 && (i == 8 || i == 13 || i == 18 || i == 23):
		default:
			return false
		}
	}
	switch {
	case digits == len(seg):
		return true
	case digits+hex == len(seg):
		return len(seg) >= 8 && digits > 0
	}
	return len(seg) == 36 && digits+hex == 32
}
