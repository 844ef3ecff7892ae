// Package apm turns the access lines of Gunicorn apps (gunicorn.AccessLine,
// one per request, read off each generation's own pipe) into per-route
// request, error and latency metrics, an Apdex score per app, and the
// comparison of a new generation with the one it replaced.
//
// A Set holds every app's state and is a prometheus.Collector; an App is
// one app's routes and sliding windows; a Gen is one generation's
// per-second figures. A reader (Read) per generation parses lines and
// records them; it never blocks the app: the logger class writes to a
// non-blocking pipe and drops (and counts) what a full pipe refuses.
//
// Route cardinality is bounded twice: per app (config route_cap) and in
// total (Options.TotalRoutes); a path past either bound counts as the
// route "other".
package apm
