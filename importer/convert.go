// Package importer converts supervisord configuration files (INI) into the
// supervisor's TOML, with comments where the two differ. It is pure: it
// reads the files it is given (and those their [include] names) and starts
// nothing.
package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Options are what a conversion reads besides the files.
type Options struct {
	// LookupEnv resolves %(ENV_X)s at conversion time; nil resolves none.
	LookupEnv func(string) (string, bool)
	// Hostname is %(host_node_name)s.
	Hostname string
}

// Result is a conversion's output.
type Result struct {
	// TOML is the configuration, ready for `supervisor check`.
	TOML []byte
	// Warnings name what was not mapped, or not exactly, each as
	// FILE:LINE: [SECTION] KEY: MESSAGE.
	Warnings []string
}

// converter holds one conversion's state.
type converter struct {
	opt      Options
	sections []*section
	warnings []warning
	warned   map[string]bool
	// fileOrder numbers the files in the order they were read.
	fileOrder map[string]int
	apps      []*appOut
	groups    []*table
	// byProgram maps a program's name to its apps' names (several for a
	// Gunicorn program with numprocs).
	byProgram map[string][]string
	// groupOf maps a program to the [group:NAME] that lists it.
	groupOf map[string]string
	// appNames are the names of the apps converted so far.
	appNames  map[string]bool
	passEnv   []string
	globalEnv [][2]string
	// globalUser is [supervisord] user: who the programs ran as by default
	// ("" for root).
	globalUser string
	// notes are comments above [supervisor]: what was not converted.
	notes []string
}

// appOut is one [app.NAME] table to write.
type appOut struct {
	name     string
	priority int
	t        *table
}

// Convert reads files (supervisord INI, each with the files its [include]
// names, globs relative to the including file) and returns the equivalent
// TOML. An error is the input's (a file that cannot be read or parsed, two
// programs with one name) and names the file; there is no output then.
func Convert(files []string, opt Options) (*Result, error) {
	c := &converter{opt: opt, byProgram: map[string][]string{}, appNames: map[string]bool{}, groupOf: map[string]string{}, warned: map[string]bool{}, fileOrder: map[string]int{}}
	for _, f := range files {
		if err := c.load(f, true); err != nil {
			return nil, err
		}
	}
	if err := c.convert(); err != nil {
		return nil, err
	}
	return &Result{TOML: []byte(c.render(files)), Warnings: c.sortedWarnings()}, nil
}

// warn records a warning at file:line, once (the copies of a program
// would repeat theirs).
func (c *converter) warn(file string, line int, msg string) {
	w := fmt.Sprintf("%s:%d: %s", file, line, msg)
	if !c.warned[w] {
		c.warned[w] = true
		c.warnings = append(c.warnings, warning{file: file, line: line, text: w})
	}
}

// warning is one warning and where it points.
type warning struct {
	file string
	line int
	text string
}

// sortedWarnings returns the warnings by file (in reading order), then line.
func (c *converter) sortedWarnings() []string {
	slices.SortStableFunc(c.warnings, func(a, b warning) int {
		if d := c.fileOrder[a.file] - c.fileOrder[b.file]; d != 0 {
			return d
		}
		return a.line - b.line
	})
	out := make([]string, len(c.warnings))
	for i, w := range c.warnings {
		out[i] = w.text
	}
	return out
}

// load reads one file and, when top is true, the files its [include] names.
func (c *converter) load(path string, top bool) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s: cannot read: %w", path, unwrapPath(err))
	}
	if _, seen := c.fileOrder[path]; !seen {
		c.fileOrder[path] = len(c.fileOrder)
	}
	secs, err := parseINI(path, string(data), c.warn)
	if err != nil {
		return err
	}
	for _, s := range secs {
		if s.name != "include" {
			c.sections = append(c.sections, s)
			continue
		}
		if !top {
			c.warn(path, s.line, "[include] in an included file: ignored, as supervisord does")
			continue
		}
		if err := c.include(s); err != nil {
			return err
		}
	}
	return nil
}

// include loads the files an [include] section's files= globs match.
func (c *converter) include(s *section) error {
	o, ok := s.get("files")
	if !ok {
		c.warn(s.file, s.line, "[include] without files: nothing included")
		return nil
	}
	ex := c.expansion(s, nil)
	for _, pat := range strings.Fields(o.value) {
		pat, _ = ex.expand(pat)
		if !filepath.IsAbs(pat) {
			pat = filepath.Join(filepath.Dir(s.file), pat)
		}
		matches, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("%s:%d: [include] files: %q: %w", s.file, o.line, pat, err)
		}
		if len(matches) == 0 {
			c.warn(s.file, o.line, fmt.Sprintf("[include] files: %s matches no file", pat))
		}
		slices.Sort(matches)
		for _, m := range matches {
			if err := c.load(m, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// unwrapPath returns a *PathError's cause (its path is already named).
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// expansion returns the %(NAME)s values of section s; vars adds or
// overrides some (program_name, process_num, ...).
func (c *converter) expansion(s *section, vars map[string]string) *expansion {
	abs, err := filepath.Abs(s.file)
	if err != nil {
		abs = s.file
	}
	v := map[string]string{"here": filepath.Dir(abs), "host_node_name": c.opt.Hostname}
	for k, x := range vars {
		v[k] = x
	}
	return &expansion{vars: v, env: c.opt.LookupEnv, used: map[string]bool{}}
}
