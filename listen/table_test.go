package listen

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestTableServeSwapsHeld: a rename-steered listener's table gives a
// takeover its own socket, and Serve makes that socket the held one, which
// receives the new connections.
func TestTableServeSwapsHeld(t *testing.T) {
	_, public, held, u := steeredUnix(t)
	tab := NewTable([]*Socket{held}, []Steering{u})
	if m := tab.Entries()[0].Mode(); m != steer.ModeRename {
		t.Fatalf("mode %s, want %s", m, steer.ModeRename)
	}
	if _, _, err := tab.Open(1, false); err != nil {
		t.Fatal(err)
	}
	if err := tab.Serve(1); err != nil {
		t.Fatal(err)
	}
	fds, stop, err := tab.Open(2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(fds) != 1 || stop[0] == tab.Sockets()[0] {
		t.Fatalf("takeover got %v (stop %p), want its own socket, not the held %p", fds, stop[0], tab.Sockets()[0])
	}
	if err := tab.Serve(2); err != nil {
		t.Fatal(err)
	}
	if tab.Sockets()[0] != stop[0] {
		t.Error("after Serve(2) the held socket is not generation 2's")
	}
	if err := tab.Release(1); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("unix", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptOne(t, fds[0])
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tab.Quiesce(ctx, 2, time.Millisecond) // serving: returns at once
	hs, err := tab.Handover()
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Kind() != "rename" || hs[0].FD != tab.Sockets()[0].FD() || hs[0].Hold == "" {
		t.Errorf("hand-over %+v: want one rename record of the held socket (fd %d) with its hidden name", hs, tab.Sockets()[0].FD())
	}
	if err := tab.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Handover(); err == nil || !strings.Contains(err.Error(), "is closed") {
		t.Errorf("hand-over of a closed table: %v, want an error naming the closed listener", err)
	}
}

// TestNilTable: an app without listeners has no table; every method does
// nothing.
func TestNilTable(t *testing.T) {
	var tab *Table
	fds, stop, err := tab.Open(1, true)
	if len(fds) != 0 || len(stop) != 0 || err != nil {
		t.Errorf("Open: %v, %v, %v", fds, stop, err)
	}
	tab.Share(1, 2)
	tab.Quiesce(context.Background(), 1, time.Millisecond)
	for name, err := range map[string]error{
		"Serve": tab.Serve(1), "Release": tab.Release(1), "Relink": tab.Relink(),
		"ShutHeld": tab.ShutHeld(), "ShutSteering": tab.ShutSteering(), "Close": tab.Close(),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(tab.Entries()) != 0 {
		t.Error("a nil table has entries")
	}
}

// TestTableClosedKeepsEntries: a closed table reports it, keeps its
// entries (closed sockets, for status), and its port refuses connections.
func TestTableClosedKeepsEntries(t *testing.T) {
	s, err := Bind(config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	tb := NewTable([]*Socket{s}, nil)
	if tb.Closed() || (*Table)(nil).Closed() {
		t.Fatal("an open or nil table reports closed")
	}
	if err := tb.Close(); err != nil {
		t.Fatal(err)
	}
	if !tb.Closed() {
		t.Error("closed table does not report it")
	}
	es := tb.Entries()
	if len(es) != 1 || es[0].Socket.FD() != -1 {
		t.Errorf("entries after close: %+v", es)
	}
	if c, err := net.Dial("tcp", s.Bound); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			_ = c.Close()
		}
		t.Errorf("connect after close: %v, want refused", err)
	}
}
