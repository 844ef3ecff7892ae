package importer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzConvert: whatever the INI, Convert does not panic, and its output is
// always valid TOML (every value it writes is quoted as TOML wants).
func FuzzConvert(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.conf")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add("[program:a b]\ncommand=gunicorn -b \"\x01\" 'x\\y' \"a\\\"b\"\nenvironment=K=\"\x7f\",\"=\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "f.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := Convert([]string{path}, Options{})
		if err != nil {
			return
		}
		var doc map[string]any
		if _, err := toml.Decode(string(res.TOML), &doc); err != nil {
			t.Fatalf("invalid TOML: %v\n%s", err, res.TOML)
		}
	})
}
