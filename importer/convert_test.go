package importer

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.toml and *.stderr from the current output")

// testOptions are fixed so that the golden files do not depend on the host.
var testOptions = Options{
	LookupEnv: func(k string) (string, bool) {
		v, ok := map[string]string{"HOME": "/root"}[k]
		return v, ok
	},
	Hostname: "web1",
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestGolden: each testdata/*.conf converts to testdata/*.toml, with the
// warnings of testdata/*.stderr.
func TestGolden(t *testing.T) {
	confs, err := filepath.Glob("testdata/*.conf")
	if err != nil || len(confs) < 7 {
		t.Fatalf("testdata/*.conf: %v, %d files", err, len(confs))
	}
	for _, conf := range confs {
		base := strings.TrimSuffix(filepath.Base(conf), ".conf")
		t.Run(base, func(t *testing.T) {
			res, err := Convert([]string{conf}, testOptions)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, base+".toml", string(res.TOML))
			var stderr string
			for _, w := range res.Warnings {
				stderr += w + "\n"
			}
			golden(t, base+".stderr", stderr)
		})
	}
}
