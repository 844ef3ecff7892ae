package config

import (
	"errors"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/safefile"
)

// LogTarget is where an app's output lines go (besides the in-memory ring
// that `supctl logs` reads, which every app has).
type LogTarget int

const (
	// LogStdout writes prefixed lines to the supervisor's stdout (journald,
	// `docker logs`).
	LogStdout LogTarget = iota
	// LogFile writes to AppLog.File, rotated by size.
	LogFile
	// LogNone writes nowhere.
	LogNone
)

// String returns the target as the `log` key spells it.
func (l LogTarget) String() string {
	switch l {
	case LogStdout:
		return "stdout"
	case LogFile:
		return "file"
	case LogNone:
		return "none"
	}
	return "unknown"
}

// Defaults of an app's log file keys.
const (
	DefaultLogMaxSizeMB = 100
	DefaultLogMaxFiles  = 5
)

// AppLog is how an app's output is written: the log_* keys of its table.
type AppLog struct {
	Target LogTarget `key:"log"`
	// File is the log file (absolute; set only with LogFile).
	File string `key:"log_file"`
	// MaxSizeMB is the size in MiB at which File is rotated.
	MaxSizeMB int `key:"log_max_size"`
	// MaxFiles is the number of rotated files kept (0: all).
	MaxFiles int `key:"log_max_files"`
	// Compress gzips rotated files.
	Compress bool `key:"log_compress"`
	// Timestamps puts the time the supervisor read each line in front of
	// it (RFC 3339, milliseconds); false when the app writes its own.
	Timestamps bool `key:"log_timestamps"`
}

// Log formats of the supervisor's own log ([supervisor] log_format).
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// appLog reads an app's log keys. The file keys are allowed only with
// log = "file", where log_file is required.
func appLog(t *table) AppLog {
	l := AppLog{Target: LogStdout, MaxSizeMB: DefaultLogMaxSizeMB, MaxFiles: DefaultLogMaxFiles, Timestamps: true}
	var target string
	if t.str("log", &target) {
		switch target {
		case "stdout":
		case "file":
			l.Target = LogFile
		case "none":
			l.Target = LogNone
		default:
			t.errf("log", "unknown log target %q (want \"stdout\", \"file\" or \"none\")", target)
		}
	}
	t.boolean("log_timestamps", &l.Timestamps)
	fileKeys := []string{"log_file", "log_max_size", "log_max_files", "log_compress"}
	if l.Target != LogFile {
		for _, k := range fileKeys {
			if t.has(k) {
				t.used[k] = true
				t.errf(k, "only allowed with log = \"file\"")
			}
		}
		return l
	}
	if !t.has("log_file") {
		t.errf("log", "log = \"file\" needs log_file")
	}
	if t.filePath("log_file", &l.File) {
		if msg := logFileProblem(l.File); msg != "" {
			t.errf("log_file", "%s", msg)
		}
	}
	t.integer("log_max_size", &l.MaxSizeMB, 1, 1<<20)
	t.integer("log_max_files", &l.MaxFiles, 0, 1000)
	t.boolean("log_compress", &l.Compress)
	return l
}

// logFormat reads [supervisor] log_format (default "text").
func logFormat(t *table) string {
	f := LogFormatText
	if t.str("log_format", &f) && f != LogFormatText && f != LogFormatJSON {
		t.errf("log_format", "unknown format %q (want \"text\" or \"json\")", f)
	}
	return f
}

// logFileProblem returns what makes log file path unusable as far as can be
// told without opening it (the supervisor opens it with the same rules at
// start): a symbolic link on the way that a user other than root could
// have made, or a file in place that is a link, a directory, a FIFO, or has
// more than one hard link. A missing file or directory is no problem: the
// sink creates them.
func logFileProblem(path string) string {
	st, err := safefile.Lstat(path)
	var se *safefile.Error
	switch {
	case err == nil:
	case errors.Is(err, safefile.ErrRefused) && errors.As(err, &se):
		return se.Error()
	default:
		return ""
	}
	name := filepath.Base(path)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return path + ": " + name + " is a symbolic link: refused"
	}
	if msg := safefile.Inspect(st, name, nil); msg != "" {
		return path + ": " + msg
	}
	return ""
}
