package errinbox

import "strings"

// Markers of Python's traceback format.
const (
	tracebackHeader = "Traceback (most recent call last):"
	chainContext    = "During handling of the above exception, another exception occurred:"
	chainCause      = "The above exception was the direct cause of the following exception:"
)

// maxTracebackLines bounds the lines an assembler holds for one traceback:
// beyond it, the middle is cut (the header and the innermost frames, which
// the fingerprint reads, stay).
const maxTracebackLines = 200

// asmState is where an assembler stands in Python's traceback format.
type asmState uint8

const (
	// asmIdle: outside a traceback.
	asmIdle asmState = iota
	// asmFrames: after a header, before the exception line.
	asmFrames
	// asmDone: after an exception line; a blank line and a chain marker
	// may still continue the traceback.
	asmDone
	// asmBlank: after an exception line and a blank line.
	asmBlank
	// asmChain: after a chain marker, waiting for the next header.
	asmChain
)

// assembler cuts whole tracebacks, chains included, out of the lines of one
// stream: feed it lines in order; it returns each traceback once a line
// that cannot continue it arrives, or when flushed.
type assembler struct {
	state asmState
	lines []string
}

// feed takes the next line and returns the traceback it completed (nil if
// none).
func (a *assembler) feed(line string) []string {
	switch a.state {
	case asmFrames:
		switch {
		case line == "" || line[0] == ' ' || line[0] == '\t':
			a.add(line)
		case isExceptionLine(line):
			a.add(line)
			a.state = asmDone
		}
		// Any other line is another process's, interleaved: not ours.
		return nil
	case asmDone, asmBlank:
		switch {
		case line == "" && a.state == asmDone:
			a.state = asmBlank
			return nil
		case line == chainContext || line == chainCause:
			a.add("")
			a.add(line)
			a.state = asmChain
			return nil
		}
		done := a.take()
		a.start(line)
		return done
	case asmChain:
		switch {
		case line == "":
			return nil
		case strings.HasPrefix(line, tracebackHeader):
			a.add("")
			a.add(line)
			a.state = asmFrames
			return nil
		}
		done := a.take()
		a.start(line)
		return done
	}
	a.start(line)
	return nil
}

// start begins a traceback when line is a header.
func (a *assembler) start(line string) {
	if strings.HasPrefix(line, tracebackHeader) {
		a.lines = append(a.lines[:0:0], line)
		a.state = asmFrames
	}
}

// flush returns the traceback held when its exception line has been read
// (nil otherwise) and forgets what it held: the writer went quiet.
func (a *assembler) flush() []string {
	switch a.state {
	case asmDone, asmBlank, asmChain:
		return a.take()
	}
	a.state, a.lines = asmIdle, nil
	return nil
}

// pending reports whether the assembler holds part of a traceback.
func (a *assembler) pending() bool { return a.state != asmIdle }

func (a *assembler) take() []string {
	out := a.lines
	a.state, a.lines = asmIdle, nil
	return out
}

// add appends line, cutting the middle once the traceback is too long.
func (a *assembler) add(line string) {
	if len(a.lines) >= 2*maxTracebackLines {
		head, tail := a.lines[:10], a.lines[len(a.lines)-(maxTracebackLines-11):]
		cut := make([]string, 0, 2*maxTracebackLines)
		cut = append(cut, head...)
		cut = append(cut, "...")
		a.lines = append(cut, tail...)
	}
	a.lines = append(a.lines, line)
}

// isExceptionLine reports whether line reads as the last line of a
// traceback: a dotted Python name, alone or followed by ":".
func isExceptionLine(line string) bool {
	name, _, _ := strings.Cut(line, ":")
	return isDottedName(name)
}

// isDottedName reports whether s is a Python name such as ValueError or
// json.decoder.JSONDecodeError.
func isDottedName(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r > 127 || (i > 0 && r >= '0' && r <= '9')
			if !ok {
				return false
			}
		}
	}
	return true
}
