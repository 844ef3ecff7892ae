package daemon

import (
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/metrics"
)

// An update that removed an app, or failed after opening an added app's
// bridge, leaves no statsd socket behind: the bridges of apps the running
// configuration lacks are closed (their ports free again), the others kept.
func TestCloseBridgesNotIn(t *testing.T) {
	met := metrics.New(nil, metrics.Options{})
	d := &Daemon{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), bridges: map[string]*metrics.StatsdBridge{}}
	for _, app := range []string{"keep", "gone"} {
		b, err := metrics.NewStatsdBridge(app, met)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() }) // a second Close returns the first's result
		d.bridges[app] = b
	}
	goneAddr := d.bridges["gone"].Addr()
	d.closeBridgesNotIn(&config.Config{Apps: []*config.App{{Name: "keep"}}})
	if _, ok := d.bridges["gone"]; ok || len(d.bridges) != 1 || d.bridges["keep"] == nil {
		t.Fatalf("bridges after pruning: %v, want only keep", d.bridges)
	}
	c, err := net.ListenPacket("udp", goneAddr)
	if err != nil {
		t.Fatalf("the removed app's statsd address %s is still bound: %v", goneAddr, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
