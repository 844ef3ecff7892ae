package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWorkerKeys: workers as an integer keeps a fixed count, as "MIN..MAX"
// sets the range; max_worker_rss takes binary units.
func TestWorkerKeys(t *testing.T) {
	for _, tc := range []struct {
		name, keys string
		lo, hi     int
		rss        int64
	}{
		{"fixed", "workers = 4\n", 4, 0, 0},
		{"range", "workers = \"2..8\"\n", 2, 8, 0},
		{"spaced range", "workers = \" 1 .. 3 \"\n", 1, 3, 0},
		{"rss MiB", "workers = 2\nmax_worker_rss = \"300MiB\"\n", 2, 0, 300 << 20},
		{"rss GiB", "max_worker_rss = \"1GiB\"\n", 0, 0, 1 << 30},
		{"rss bytes", "max_worker_rss = \"10485760\"\n", 0, 0, 10 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t)
			venv := filepath.Join(dir, "venv")
			path := filepath.Join(dir, "s.toml")
			text := "[app.web]\nallow_root = true\nvirtualenv = \"" + venv + "\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8000\"]\n" + tc.keys
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			a := cfg.App("web")
			if a.Workers != tc.lo || a.WorkersMax != tc.hi || a.MaxWorkerRSS != tc.rss {
				t.Errorf("workers %d..%d rss %d, want %d..%d rss %d", a.Workers, a.WorkersMax, a.MaxWorkerRSS, tc.lo, tc.hi, tc.rss)
			}
		})
	}
}
