// Package exitcode carries a process exit status through error returns, so
// that only main calls os.Exit.
package exitcode

import (
	"errors"
	"fmt"
)

// Error is an error with the exit status the process should end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// New wraps err with code.
func New(code int, err error) error { return &Error{Code: code, Err: err} }

// Code returns the exit status for err: 0 for nil, the carried code for an
// *Error, 1 otherwise.
func Code(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 1
}
