package upgrade

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/gunisup/supervisor/logs"
)

// TestLogLineWire: an app's handed-over lines keep their JSON names (t,
// gen, s, x, part, more; the app's name left out), which an image of
// another version reads, and read back as written.
func TestLogLineWire(t *testing.T) {
	at := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	in := AppHandover{Name: "web", Log: []logs.Line{
		{Time: at, App: "web", Gen: 3, Stream: logs.Stderr, Text: "Traceback", Part: 1, More: true},
		{Time: at, App: "web", Gen: 3, Stream: logs.Stdout, Text: "ok"},
	}}
	b, err := json.Marshal(in.Log)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"t":"2026-12-07T06:00:00Z","gen":3,"s":2,"x":"Traceback","part":1,"more":true},{"t":"2026-12-07T06:00:00Z","gen":3,"s":1,"x":"ok"}]`
	if string(b) != want {
		t.Errorf("handed-over lines\n %s\nwant\n %s", b, want)
	}
	var back []logs.Line
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for i := range in.Log {
		in.Log[i].App = "" // not handed over: the next image's log sets it
	}
	if !reflect.DeepEqual(back, in.Log) {
		t.Errorf("read back %+v, want %+v", back, in.Log)
	}
}
