package gunicorn

import (
	"fmt"
	"reflect"
	"testing"
)

// TestTraceback: the last traceback is cut from its header line on,
// its exception line found; a long one keeps its header and its end;
// Gunicorn's HaltServer gives way to the app's traceback before it; without
// a traceback the last lines are returned.
func TestTraceback(t *testing.T) {
	first := []string{"Traceback (most recent call last):", `  File "a.py", line 1, in <module>`, "ValueError: first"}
	second := []string{"Traceback (most recent call last):", `  File "app.py", line 9, in <module>`, `    raise RuntimeError("x")`, "RuntimeError: x", "[INFO] Shutting down: Master"}
	tb, exc := Traceback(append(append([]string{"[INFO] Booting worker"}, first...), second...))
	if !reflect.DeepEqual(tb, second) || exc != "RuntimeError: x" {
		t.Errorf("got %q, %q; want the second traceback and RuntimeError: x", tb, exc)
	}

	long := []string{"Traceback (most recent call last):"}
	for i := range 100 {
		long = append(long, fmt.Sprintf("  frame %d", i))
	}
	long = append(long, "KeyError: 'k'")
	tb, exc = Traceback(long)
	if len(tb) != tracebackMax || tb[0] != long[0] || tb[1] != "..." || tb[len(tb)-1] != "KeyError: 'k'" || exc != "KeyError: 'k'" {
		t.Errorf("long traceback cut to %d lines %q..%q, exception %q", len(tb), tb[:2], tb[len(tb)-1], exc)
	}

	halt := []string{"Traceback (most recent call last):", `  File "/usr/lib/python3/dist-packages/gunicorn/arbiter.py", line 209, in run`, "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>"}
	app := append([]string{"[ERROR] Exception in worker process"}, second[:4]...)
	tb, exc = Traceback(append(append(app, halt...), "[INFO] Reason: Worker failed to boot."))
	if !reflect.DeepEqual(tb, second[:4]) || exc != "RuntimeError: x" {
		t.Errorf("with Gunicorn's HaltServer last got %q, %q; want the app's RuntimeError traceback", tb, exc)
	}
	tb, exc = Traceback(halt)
	if !reflect.DeepEqual(tb, halt) || exc != halt[2] {
		t.Errorf("with HaltServer alone got %q, %q; want it", tb, exc)
	}

	var plain []string
	for i := range 30 {
		plain = append(plain, fmt.Sprintf("line %d", i))
	}
	tb, exc = Traceback(plain)
	if !reflect.DeepEqual(tb, plain[30-tracebackPlain:]) || exc != "" {
		t.Errorf("without a traceback got %q, %q; want the last %d lines", tb, exc, tracebackPlain)
	}
}
