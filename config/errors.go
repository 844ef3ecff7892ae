package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration (or env) file. Line is 0 when the
// position is unknown; Key is "" when the problem concerns no particular key.
type Error struct {
	File string
	Line int
	// Key is the dotted TOML key (app.web.stop_timeout), with an [i] suffix
	// for an element of an array; for env files, the variable name.
	Key string
	Msg string
	// Err is the underlying error, if any (for errors.Is/As); Msg already
	// contains its text.
	Err error
}

// Error formats the problem as FILE:LINE: KEY: MSG, leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, or nil.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one file, ordered by line (problems
// without a line come last). Parse and Load return a non-empty *Errors
// rather than a nil one.
type Errors struct {
	List []*Error
	// files orders the problems of several files (a main file and those
	// it includes): by file in this order, then by line.
	files []string
}

// Error returns one line per problem.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, it := range e.List {
		lines[i] = it.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the items to errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, it := range e.List {
		out[i] = it
	}
	return out
}

// add appends a problem.
func (e *Errors) add(it *Error) { e.List = append(e.List, it) }

// err sorts the problems (by file, see files, then by line) and returns e,
// or nil when there are none (so that callers never see a typed nil inside a
// non-nil error).
func (e *Errors) err() error {
	if len(e.List) == 0 {
		return nil
	}
	slices.SortStableFunc(e.List, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(e.fileRank(a.File), e.fileRank(b.File)), cmp.Compare(sortLine(a.Line), sortLine(b.Line)))
	})
	return e
}

// fileRank is file's place in e.files; 0 for a file not in it.
func (e *Errors) fileRank(file string) int {
	return max(slices.Index(e.files, file), 0)
}

func sortLine(l int) int {
	if l <= 0 {
		return int(^uint(0) >> 1)
	}
	return l
}
