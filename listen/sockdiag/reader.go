package sockdiag

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Depth is the accept queue of one listener.
type Depth struct {
	Length uint32 // connections waiting for accept(2)
	Max    uint32 // the backlog the kernel applies
}

// Reader reads the accept queues of listeners during one pass (a scrape,
// a sample): TCP ones by TCP_INFO, Unix ones from one sock_diag dump made
// on first need. Make one per pass; it is not safe for concurrent use.
type Reader struct {
	// Fail is told of a read that failed for another reason than the
	// descriptor being gone (kind: "tcp_info" or "sock_diag"); nil ignores.
	Fail     func(kind string, err error)
	unixDone bool
	unix     map[uint64]Queue
}

// Read returns the accept queue of the listener fd (network "tcp",
// "tcp4", "tcp6" or "unix"; address names it in errors). ok is false when
// there is nothing to report: the descriptor is closed (EBADF) or no
// longer a listening socket, the network is another, or the read failed
// (then Fail was told).
func (r *Reader) Read(fd int, network, address string) (d Depth, ok bool) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			if !Gone(err) {
				r.fail("tcp_info", fmt.Errorf("getsockopt TCP_INFO on fd %d (%s): %w", fd, address, err))
			}
			return d, false
		}
		if info.State != tcpListen {
			return d, false
		}
		// On a listener, tcpi_unacked is sk_ack_backlog (the accept queue)
		// and tcpi_sacked is sk_max_ack_backlog.
		return Depth{Length: info.Unacked, Max: info.Sacked}, true
	case "unix":
		ino, err := SocketInode(fd)
		if err != nil {
			if !Gone(err) {
				r.fail("sock_diag", fmt.Errorf("%s: %w", address, err))
			}
			return d, false
		}
		if !r.unixDone {
			r.unixDone = true
			m, err := UnixListenQueues()
			if err != nil {
				r.fail("sock_diag", err)
			}
			r.unix = m
		}
		u, ok := r.unix[ino]
		return Depth{Length: u.Length, Max: u.Max}, ok
	}
	return d, false
}

func (r *Reader) fail(kind string, err error) {
	if r.Fail != nil {
		r.Fail(kind, err)
	}
}

// Gone reports errors meaning "this descriptor is not a socket we can read
// any more": closed, or reused for something else.
func Gone(err error) bool {
	return errors.Is(err, unix.EBADF) || errors.Is(err, unix.ENOTSOCK) || errors.Is(err, unix.ENOPROTOOPT) ||
		errors.Is(err, unix.EOPNOTSUPP)
}
