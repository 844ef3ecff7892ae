package metrics

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is supervisor_build_info{version,goversion} 1: the running
// supervisor's version (Options.Version, "dev" when empty) and the Go
// release it was built with, to join onto other series or to see which
// hosts of a fleet still run an old build.
func buildInfo(version string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels are the supervisor's version and the Go release that built it.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
