package errinbox

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// fingerprintFrames is how many of the innermost frames of the app's own
// code make a group's fingerprint, with the exception type.
const fingerprintFrames = 3

// Frame is one "File ..., line N, in F" entry of a traceback.
type Frame struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Function string `json:"function,omitempty"`
}

// App reports whether the frame is the app's own code: not an installed
// package (site-packages, dist-packages), not Python's standard library
// (lib/pythonX.Y), not generated code ("<frozen ...>", "<string>").
func (f Frame) App() bool {
	switch {
	case strings.HasPrefix(f.File, "<"),
		strings.Contains(f.File, "/site-packages/"), strings.Contains(f.File, "/dist-packages/"),
		stdlibPath.MatchString(f.File):
		return false
	}
	return true
}

// String is "FILE:LINE in FUNCTION".
func (f Frame) String() string {
	s := f.File + ":" + strconv.Itoa(f.Line)
	if f.Function != "" {
		s += " in " + f.Function
	}
	return s
}

var stdlibPath = regexp.MustCompile(`/lib/python[0-9]+(\.[0-9]+)?/`)

// parseFrame reads `  File "PATH", line N[, in FUNCTION]`; ok is false for
// any other line.
func parseFrame(l string) (f Frame, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimLeft(l, " \t"), `File "`)
	if !found {
		return Frame{}, false
	}
	file, rest, found := strings.Cut(rest, `", line `)
	if !found || file == "" {
		return Frame{}, false
	}
	num, fn, _ := strings.Cut(rest, ", in ")
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return Frame{}, false
	}
	return Frame{File: file, Line: n, Function: fn}, true
}

// Exception is what a traceback says, read by Parse: of a chain, the last
// exception (the one that escaped).
type Exception struct {
	// Type is the exception's class as Python prints it (ValueError,
	// json.decoder.JSONDecodeError).
	Type string
	// Line is the whole exception line ("ValueError: bad input").
	Line string
	// Frames are the last exception's frames, outermost first.
	Frames []Frame
	// Chained counts the exceptions before the last in its chain.
	Chained int
}

// Parse reads a traceback (as the assembler cuts it: from its header to
// its last exception line, chains included). ok is false when it holds no
// exception line.
func Parse(tb []string) (e Exception, ok bool) {
	for _, l := range tb {
		switch {
		case strings.HasPrefix(l, tracebackHeader):
			if e.Type != "" {
				e.Chained++
			}
			e.Frames, e.Type, e.Line = nil, "", ""
		case l == "" || l[0] == ' ' || l[0] == '\t':
			if f, ok := parseFrame(l); ok {
				e.Frames = append(e.Frames, f)
			}
		case e.Type == "" && isExceptionLine(l):
			e.Line = l
			e.Type, _, _ = strings.Cut(l, ":")
		}
	}
	return e, e.Type != ""
}

// Fingerprint identifies e's group: its type and its innermost
// fingerprintFrames frames of the app's own code (all frames' when none is
// the app's), each by the last two elements of its file's path and its
// function. Line numbers and the release directory are left out, so that a
// deploy that moves code keeps the group.
func (e Exception) Fingerprint() string {
	frames := e.AppFrames()
	if len(frames) == 0 {
		frames = e.Frames
	}
	frames = frames[max(0, len(frames)-fingerprintFrames):]
	h := sha256.New()
	h.Write([]byte(e.Type))
	for _, f := range frames {
		h.Write([]byte{0})
		h.Write([]byte(shortPath(f.File)))
		h.Write([]byte{0})
		h.Write([]byte(f.Function))
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// AppFrames returns e's frames that are the app's own code, outermost
// first.
func (e Exception) AppFrames() []Frame {
	var out []Frame
	for _, f := range e.Frames {
		if f.App() {
			out = append(out, f)
		}
	}
	return out
}

// Where is the innermost frame of the app's own code ("" without one).
func (e Exception) Where() string {
	app := e.AppFrames()
	if len(app) == 0 {
		return ""
	}
	return app[len(app)-1].String()
}

// shortPath returns the last two elements of p (releases/abc/app/views.py
// gives app/views.py).
func shortPath(p string) string {
	dir, file := path.Split(p)
	return path.Join(path.Base(dir), file)
}
