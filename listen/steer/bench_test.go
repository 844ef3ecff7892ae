package steer

import (
	"net"
	"testing"
)

// BenchmarkServe measures one switch: the map update of Group.Serve.
func BenchmarkServe(b *testing.B) {
	requireBPF(b)
	g, ls := newGroup(b, 2)
	for i := 0; b.Loop(); i++ {
		if err := g.Serve(ls[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnectAccept measures a loopback connect plus accept through
// the steering program (two listeners in the group, the second serving;
// bpf-split: the second is a canary at share 1, so the program compares
// the hash and swaps its choice) against a plain listening socket.
func BenchmarkConnectAccept(b *testing.B) {
	b.Run("bpf", func(b *testing.B) {
		requireBPF(b)
		g, ls := newGroup(b, 2)
		serve(b, g, ls[1])
		ln, err := net.FileListener(ls[1].File())
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		connectAccept(b, ln)
	})
	b.Run("bpf-split", func(b *testing.B) {
		requireBPF(b)
		g, ls := newGroup(b, 2)
		if err := g.Split(ls[0], ls[1], 1); err != nil { // every hash below: the canary path
			b.Fatal(err)
		}
		ln, err := net.FileListener(ls[1].File())
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		connectAccept(b, ln)
	})
	b.Run("plain", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		connectAccept(b, ln)
	})
}

// connectAccept dials ln, accepts the connection and closes both ends with
// a reset (SO_LINGER 0), so no TIME_WAIT piles up across iterations.
func connectAccept(b *testing.B, ln net.Listener) {
	addr := ln.Addr().String()
	for b.Loop() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		if err := c.(*net.TCPConn).SetLinger(0); err != nil {
			b.Fatal(err)
		}
		_ = c.Close() // close errors of a reset connection carry nothing to measure
		_ = s.Close()
	}
}
