package metrics

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/supervise"
)

// tcpListen is TCP_LISTEN, the socket state of a listener (<netinet/tcp.h>).
const tcpListen = 10

// queueDepth is the accept queue of one listener.
type queueDepth struct {
	length uint32 // connections waiting for accept(2)
	max    uint32 // the backlog the kernel applies
}

// queueReader reads listener accept queues during one scrape. Unix
// listeners share one sock_diag dump, made on first need.
type queueReader struct {
	fail     func(string, error)
	unixDone bool
	unix     map[uint64]sockdiag.Queue
}

// read returns the accept queue of l. ok is false when the series must be
// skipped: the descriptor is closed (EBADF) or no longer a listening socket,
// or the read failed (then fail was told).
func (r *queueReader) read(l supervise.ListenerSnapshot) (q queueDepth, ok bool) {
	switch l.Network {
	case "tcp", "tcp4", "tcp6":
		info, err := unix.GetsockoptTCPInfo(l.FD, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			if !gone(err) {
				r.fail("tcp_info", fmt.Errorf("getsockopt TCP_INFO on fd %d (%s): %w", l.FD, l.Address, err))
			}
			return q, false
		}
		if info.State != tcpListen {
			return q, false
		}
		// On a listener, tcpi_unacked is sk_ack_backlog (the accept queue)
		// and tcpi_sacked is sk_max_ack_backlog.
		return queueDepth{length: info.Unacked, max: info.Sacked}, true
	case "unix":
		ino, err := sockdiag.SocketInode(l.FD)
		if err != nil {
			if !gone(err) {
				r.fail("sock_diag", fmt.Errorf("%s: %w", l.Address, err))
			}
			return q, false
		}
		if !r.unixDone {
			r.unixDone = true
			m, err := sockdiag.UnixListenQueues()
			if err != nil {
				r.fail("sock_diag", err)
			}
			r.unix = m
		}
		u, ok := r.unix[ino]
		return queueDepth{length: u.Length, max: u.Max}, ok
	}
	return q, false
}

// gone reports errors meaning "this descriptor is not a socket we can read
// any more": closed, or reused for something else.
func gone(err error) bool {
	return errors.Is(err, unix.EBADF) || errors.Is(err, unix.ENOTSOCK) || errors.Is(err, unix.ENOPROTOOPT) ||
		errors.Is(err, unix.EOPNOTSUPP)
}
