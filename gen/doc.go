// Package gen runs one generation of an app: a Gunicorn master with its
// workers, or a process, forked from the app's configuration (Spawner.Spawn),
// re-executed in place by Gunicorn's USR2 (Spawner.ReExec), or adopted from
// the previous image after a self-upgrade (Spawner.Adopt), and the
// Generation that tracks it: its exit, signals and bounded stop, its
// captured output and Python traceback, its access pipe for route metrics,
// what it hands over to a successor, and the tidying after its exit
// (Spawner.Finish). It also runs an app's health-check commands (Command).
//
// Contract: a Spawner holds what every app shares (the reaper, the Gunicorn
// version prober, the run directory, the statsd addresses, the route set,
// the generation homes, the logger); what is one app's (its configuration,
// log, cgroup, worker statistics, the descriptors from its listen table)
// comes with each call, so the package keeps nothing keyed by app name.
// Every process is forked and waited for through proc's reaper. Which
// generation serves, and when one is started, stopped or replaced, is the
// caller's (package supervise): this package only carries it out.
package gen
