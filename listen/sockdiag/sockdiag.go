// Package sockdiag reads the accept queues of listening Unix sockets over
// NETLINK_SOCK_DIAG (unix_diag), which is the only interface that reports
// them: SIOCINQ refuses a listening Unix socket. Reader reads any held
// listener's queue, a TCP one through TCP_INFO.
package sockdiag

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Definitions from <linux/unix_diag.h> and <netinet/tcp.h> that
// golang.org/x/sys/unix does not carry.
const (
	tcpListen        = 10   // TCP_LISTEN, the socket state of a listener
	udiagShowRQLen   = 0x10 // UDIAG_SHOW_RQLEN
	unixDiagRQLen    = 4    // UNIX_DIAG_RQLEN attribute
	unixDiagReqLen   = 24   // sizeof(struct unix_diag_req)
	unixDiagMsgLen   = 16   // sizeof(struct unix_diag_msg)
	sockDiagRecvSize = 32 << 10
	nlaTypeMask      = 0x3fff // NLA_TYPE_MASK: strips NLA_F_NESTED and NLA_F_NET_BYTEORDER
)

// Queue is the accept queue of one listening socket.
type Queue struct {
	Length uint32 // connections waiting for accept(2)
	Max    uint32 // the backlog the kernel applies
}

// UnixListenQueues dumps every listening Unix socket of the network
// namespace and returns, by inode, rqueue (current accept-queue length) and
// wqueue (max backlog) from UNIX_DIAG_RQLEN. On a receive or parse error it
// returns what it read so far with the error.
func UnixListenQueues() (map[uint64]Queue, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open NETLINK_SOCK_DIAG socket: %w", err)
	}
	defer unix.Close(fd)
	// The kernel answers a dump synchronously; the timeout only guards a
	// caller against a kernel that never sends NLMSG_DONE.
	tv := unix.Timeval{Sec: 2}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("set SO_RCVTIMEO on sock_diag socket: %w", err)
	}

	const seq = 1
	req := make([]byte, unix.NLMSG_HDRLEN+unixDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	b := req[unix.NLMSG_HDRLEN:]
	b[0] = unix.AF_UNIX                  // sdiag_family
	ne.PutUint32(b[4:], 1<<tcpListen)    // udiag_states
	ne.PutUint32(b[12:], udiagShowRQLen) // udiag_show
	ne.PutUint32(b[16:], ^uint32(0))     // udiag_cookie: none
	ne.PutUint32(b[20:], ^uint32(0))
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send unix_diag dump request: %w", err)
	}

	out := make(map[uint64]Queue)
	buf := make([]byte, sockDiagRecvSize)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return out, fmt.Errorf("receive unix_diag dump: %w", err)
		}
		done, err := parseUnixDiag(buf[:n], seq, out)
		if err != nil || done {
			return out, err
		}
	}
}

// UnixQueueLength returns how many connections wait on the listening Unix
// socket whose sockfs inode (fstat of a descriptor) is ino; a socket that
// is not listening (never was, or has closed) counts as 0.
func UnixQueueLength(ino uint64) (int, error) {
	m, err := UnixListenQueues()
	if err != nil {
		return 0, err
	}
	return int(m[ino].Length), nil
}

// SocketInode returns the sockfs inode of the socket open as fd: the name
// sock_diag gives it (the inode of a Unix socket's path is another one). A
// descriptor that is not a socket is unix.ENOTSOCK; a closed one, EBADF.
func SocketInode(fd int) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("fstat fd %d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, fmt.Errorf("fd %d: %w", fd, unix.ENOTSOCK)
	}
	return st.Ino, nil
}

// parseUnixDiag adds the listeners of one netlink datagram to out. done is
// true at NLMSG_DONE.
func parseUnixDiag(b []byte, seq uint32, out map[uint64]Queue) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("unix_diag: bad netlink message length %d (datagram %d bytes)", l, len(b))
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		msgSeq := ne.Uint32(b[8:])
		b = b[min(nlAlign(l), len(b)):]
		if msgSeq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return false, errors.New("unix_diag: short NLMSG_ERROR")
			}
			code := int32(ne.Uint32(msg))
			if code == 0 {
				continue
			}
			return false, fmt.Errorf("unix_diag dump: %w", unix.Errno(-code))
		case unix.SOCK_DIAG_BY_FAMILY:
		default:
			continue
		}
		if len(msg) < unixDiagMsgLen {
			return false, fmt.Errorf("unix_diag: short unix_diag_msg (%d bytes)", len(msg))
		}
		ino := uint64(ne.Uint32(msg[4:]))
		attrs := msg[unixDiagMsgLen:]
		for len(attrs) >= unix.SizeofNlAttr {
			al := int(ne.Uint16(attrs[0:]))
			at := ne.Uint16(attrs[2:]) & nlaTypeMask
			if al < unix.SizeofNlAttr || al > len(attrs) {
				break
			}
			if at == unixDiagRQLen && al >= unix.SizeofNlAttr+8 {
				d := attrs[unix.SizeofNlAttr:]
				out[ino] = Queue{Length: ne.Uint32(d[0:]), Max: ne.Uint32(d[4:])}
			}
			attrs = attrs[min(nlAlign(al), len(attrs)):]
		}
	}
	return false, nil
}

func nlAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }
