package daemon

import (
	"fmt"
	"io"
	"os"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/logs"
)

// selfLogRing bounds the supervisor's own recent log lines kept in memory
// for `supctl log`.
const selfLogRing = 256 << 10

// selfLog keeps the supervisor's own recent log lines (`supctl log`): the
// logger writes to w, a pipe captured like an app's output into a ring.
type selfLog struct {
	app *logs.App
	w   *os.File
}

// newSelfLog starts the capture; Writer is where the logger writes.
func newSelfLog() (*selfLog, error) {
	r, w, err := logs.Pipe()
	if err != nil {
		return nil, fmt.Errorf("supervisor log ring: %w", err)
	}
	app := logs.NewApp("supervisor", logs.Options{RingBytes: selfLogRing})
	app.Attach(0, r, nil, nil)
	return &selfLog{app: app, w: w}, nil
}

// Writer returns the pipe's write end (whole lines per Write from slog).
func (s *selfLog) Writer() io.Writer { return s.w }

// OpenSupervisorLog implements control.SupervisorLog.
func (s *selfLog) OpenSupervisorLog(q control.LogQuery) ([]control.LogLine, <-chan control.LogLine, func()) {
	return openLog(s.app, q)
}
