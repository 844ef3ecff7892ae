package config

import (
	"path/filepath"
	"testing"
)

const logsWeb = `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
`

// TestAppLogKeys: the defaults (stdout, timestamps on, the file keys at
// their defaults) and a file target with every key set.
func TestAppLogKeys(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, `
[supervisor]
log_format = "json"
`+logsWeb+`
[app.files]
allow_root = true
kind = "process"
command = ["tool"]
log = "file"
log_file = "logs/files.log"
log_max_size = 2
log_max_files = 0
log_compress = true
log_timestamps = false
[app.quiet]
allow_root = true
kind = "process"
command = ["tool"]
log = "none"
`))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Supervisor.LogFormat != LogFormatJSON {
		t.Errorf("log_format = %q, want json", cfg.Supervisor.LogFormat)
	}
	want := map[string]AppLog{
		"web":   {Target: LogStdout, MaxSizeMB: DefaultLogMaxSizeMB, MaxFiles: DefaultLogMaxFiles, Timestamps: true},
		"files": {Target: LogFile, File: filepath.Join(dir, "logs/files.log"), MaxSizeMB: 2, MaxFiles: 0, Compress: true},
		"quiet": {Target: LogNone, MaxSizeMB: DefaultLogMaxSizeMB, MaxFiles: DefaultLogMaxFiles, Timestamps: true},
	}
	for name, w := range want {
		if got := cfg.App(name).Log; got != w {
			t.Errorf("app %s: log %+v, want %+v", name, got, w)
		}
	}
	def, err := Load(writeConfig(t, dir, logsWeb))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if def.Supervisor.LogFormat != LogFormatText {
		t.Errorf("default log_format = %q, want text", def.Supervisor.LogFormat)
	}
}

// TestAppLogErrors: bad values, file keys without log = "file", and a file
// target without log_file, each reported at its key (golden files).
func TestAppLogErrors(t *testing.T) {
	tests := []struct{ name, text string }{
		{"log_values", "[supervisor]\nlog_format = \"xml\"\n" + logsWeb + `log = "syslog"
log_timestamps = "yes"
[app.files]
allow_root = true
kind = "process"
command = ["tool"]
log = "file"
log_file = "x.log"
log_max_size = 0
log_max_files = -1
log_compress = "gzip"
`},
		{"log_file_keys", logsWeb + `log_file = "x.log"
log_max_size = 10
[app.nofile]
allow_root = true
kind = "process"
command = ["tool"]
log = "file"
[app.quiet]
allow_root = true
kind = "process"
command = ["tool"]
log = "none"
log_compress = true
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixture(t)
			cfg, err := Load(writeConfig(t, dir, tt.text))
			checkGolden(t, dir, tt.name, cfg, err)
		})
	}
}

// withDefaultLogs sets the log keys' defaults in a wanted configuration
// written without them.
func withDefaultLogs(c *Config) {
	c.Supervisor.LogFormat = LogFormatText
	for _, a := range c.Apps {
		a.Log = AppLog{Target: LogStdout, MaxSizeMB: DefaultLogMaxSizeMB, MaxFiles: DefaultLogMaxFiles, Timestamps: true}
	}
}
