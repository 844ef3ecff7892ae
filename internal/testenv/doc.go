// Package testenv holds the fixtures that integration tests share: a real
// virtualenv that sees Debian's Gunicorn and Flask, small Flask releases
// that behave well or badly on purpose, HTTP helpers, polling with a
// deadline, and a check that a test left no process behind.
//
// # The virtualenv is built once per test binary
//
// Venv builds the virtualenv on first use and every later call returns the
// same path. It lives under a directory made with os.MkdirTemp, not under a
// test's t.TempDir, so a package that uses it must remove it when all its
// tests are done, from TestMain:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		testenv.Cleanup()
//		os.Exit(code)
//	}
//
// Since Go 1.15 the same can be written without os.Exit, because the test
// wrapper exits with m.Run's result when TestMain returns:
//
//	func TestMain(m *testing.M) {
//		defer testenv.Cleanup()
//		m.Run()
//	}
//
// # Ports
//
// There is deliberately no FreePort helper: picking a free port and binding it
// later races with every other test on the machine. Tests configure listeners
// as tcp://127.0.0.1:0 and read the address the kernel bound from the
// supervisor (its snapshot or control API), or, when they run Gunicorn
// themselves, bind a net.Listener on 127.0.0.1:0 and hand its file to
// Gunicorn with GUNICORN_FD=3 GUNICORN_PID=-1 (see the package's own tests).
//
// # Unix sockets
//
// A Unix socket path must fit in 108 bytes, which paths under t.TempDir (named
// after the test) can exceed: use ShortTempDir for socket paths. A Gunicorn
// master unlinks its Unix socket path on exit and fails if the path is
// already gone, so a Go net.UnixListener handed to Gunicorn needs
// SetUnlinkOnClose(false).
//
// # Leftover processes
//
// MarkEnv returns a unique environment variable; put it into the environment
// of the process under test so that every descendant inherits it, then call
// AssertNoLeftovers with its value once the test has stopped everything.
package testenv
