package apm

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/gunisup/supervisor/gunicorn"
)

// benchLines is n access lines over the five routes of the e2e app, ids
// varying, as the logger class writes them.
func benchLines(n int) []byte {
	var b bytes.Buffer
	paths := []string{"/", "/about", "/report", "/items/%d", "/users/0b6c3f5e-5a1d-4c61-9f7e-%012d"}
	for i := range n {
		p := paths[i%len(paths)]
		if bytes.ContainsRune([]byte(p), '%') {
			p = fmt.Sprintf(p, i)
		}
		fmt.Fprintf(&b, "1 %d 999 GET 200 %d -1 0 %s\n", 1000+i%4, 500+i%20000, p)
	}
	return b.Bytes()
}

// BenchmarkParseAccess is the cost of parsing one line.
func BenchmarkParseAccess(b *testing.B) {
	line := []byte("1 4242 4241 GET 200 1534 -1 0 /users/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f70")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gunicorn.ParseAccess(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRead is the cost per request of the whole reader: parse,
// route, counters, histogram, Apdex and the generation's window.
func BenchmarkRead(b *testing.B) {
	const n = 100_000
	in := benchLines(n)
	s := NewSet(Options{})
	a := testApp(s)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g := a.Gen(i, 999, "/srv/r1", nil)
		if err := g.Read(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
		a.End(i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/request")
}

// BenchmarkRouteCap is the cost of a request to one of 1,000 distinct
// paths, most of them past the cap (route "other").
func BenchmarkRouteCap(b *testing.B) {
	r := newRouter(nil, 100, &budget{limit: DefaultTotalRoutes})
	paths := make([]string, 1000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/page-%d/x", i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.route(paths[i%len(paths)])
	}
}
