package metrics

import (
	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/status"
)

// queueReader reads listener accept queues during one scrape (see
// sockdiag.Reader).
type queueReader struct{ r sockdiag.Reader }

// read returns the accept queue of l. ok is false when the series must be
// skipped (see sockdiag.Reader.Read).
func (q *queueReader) read(l status.ListenerSnapshot) (sockdiag.Depth, bool) {
	return q.r.Read(l.FD, l.Network, l.Address)
}
