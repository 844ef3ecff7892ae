package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/safefile"
)

// ParseEnvFile reads a KEY=VALUE file as used by an app's env_file.
//
// Format, one assignment per line: blank lines and lines whose first
// non-blank character is # are ignored; an optional "export " prefix is
// allowed; KEY matches [A-Za-z_][A-Za-z0-9_]*; VALUE is either unquoted
// (surrounding blanks trimmed, a " #" starts a comment), 'single quoted'
// (taken literally) or "double quoted" (escapes \" \\ \$ \n \t \r); after a
// closing quote only blanks and a # comment may follow. A later assignment
// of the same KEY wins. Values cannot span lines. A NUL byte anywhere in a
// line is an error (exec would refuse the environment).
//
// On failure it returns a *Errors naming path:line for every bad line; a
// file that cannot be read gives a single item wrapping the os error.
func ParseEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Errors{List: []*Error{{File: path, Msg: "cannot read: " + pathErr(err).Error(), Err: err}}}
	}
	return parseEnv(path, data)
}

func parseEnv(path string, data []byte) (map[string]string, error) {
	env := make(map[string]string)
	errs := &Errors{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		key, val, ok, msg := parseEnvLine(sc.Text())
		if msg != "" {
			errs.add(&Error{File: path, Line: n, Key: key, Msg: msg})
			continue
		}
		if ok {
			env[key] = val
		}
	}
	if err := sc.Err(); err != nil {
		errs.add(&Error{File: path, Msg: fmt.Sprintf("read: %v", err), Err: err})
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return env, nil
}

// parseEnvLine returns ok=false for a blank or comment line, or a non-empty
// msg describing what is wrong with the line (key is set when known).
func parseEnvLine(line string) (key, val string, ok bool, msg string) {
	line = strings.TrimSuffix(line, "\r")
	if strings.IndexByte(line, 0) >= 0 {
		return "", "", false, "contains a NUL byte, which no environment variable can hold"
	}
	s := strings.TrimLeft(line, " \t")
	if s == "" || s[0] == '#' {
		return "", "", false, ""
	}
	if rest, found := strings.CutPrefix(s, "export"); found && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		s = strings.TrimLeft(rest, " \t")
	}
	k, v, found := strings.Cut(s, "=")
	if !found {
		return "", "", false, fmt.Sprintf("expected KEY=VALUE, got %q", line)
	}
	k = strings.TrimRight(k, " \t")
	if !validEnvName(k) {
		return "", "", false, fmt.Sprintf("invalid variable name %q", k)
	}
	v = strings.TrimLeft(v, " \t")
	if v == "" {
		return k, "", true, ""
	}
	switch v[0] {
	case '\'':
		end := strings.IndexByte(v[1:], '\'')
		if end < 0 {
			return k, "", false, "unterminated single quote"
		}
		if m := afterQuote(v[end+2:]); m != "" {
			return k, "", false, m
		}
		return k, v[1 : end+1], true, ""
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '"':
				if m := afterQuote(v[i+1:]); m != "" {
					return k, "", false, m
				}
				return k, b.String(), true, ""
			case c == '\\' && i+1 < len(v):
				i++
				switch e := v[i]; e {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$', '`':
					b.WriteByte(e)
				default:
					// Unknown escapes are kept as written, as a shell does.
					b.WriteByte('\\')
					b.WriteByte(e)
				}
			default:
				b.WriteByte(c)
			}
		}
		return k, "", false, "unterminated double quote"
	}
	for i := 1; i < len(v); i++ {
		if v[i] == '#' && (v[i-1] == ' ' || v[i-1] == '\t') {
			v = v[:i]
			break
		}
	}
	return k, strings.TrimRight(v, " \t"), true, ""
}

// afterQuote checks what follows a closing quote.
func afterQuote(rest string) string {
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || rest[0] == '#' {
		return ""
	}
	return fmt.Sprintf("unexpected %q after closing quote", rest)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ReadEnvFile is ParseEnvFile for an app running as uid, read with the
// supervisor's rights (an env file may be a root-only secret meant for the
// app) but never through a link the app's user could have planted: path is
// opened with safefile.OpenRead (no symbolic link that a user other than
// root could have made, on the way or at the end), and the opened
// descriptor must
// be a regular file with one link, owned by root or uid and writable by
// neither its group nor others, since whoever can write it chooses the
// app's environment. Errors are as ParseEnvFile's, naming path.
func ReadEnvFile(path string, uid int) (map[string]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Errors{List: []*Error{{File: path, Msg: "cannot read: " + err.Error(), Err: err}}}
	}
	f, err := safefile.OpenRead(abs, func(st *unix.Stat_t) string { return envFilePerm(st, uid) })
	if err != nil {
		return nil, &Errors{List: []*Error{{File: path, Msg: envOpenMsg(err), Err: err}}}
	}
	defer func() { _ = f.Close() }() // read only
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, &Errors{List: []*Error{{File: path, Msg: "cannot read: " + pathErr(err).Error(), Err: err}}}
	}
	return parseEnv(path, data)
}

// envOpenMsg describes the failure to open an env file (err from
// safefile.Open), without the path the Error names already.
func envOpenMsg(err error) string {
	var se *safefile.Error
	if !errors.As(err, &se) {
		return "cannot read: " + err.Error()
	}
	if errors.Is(err, safefile.ErrRefused) {
		return se.Msg
	}
	if se.Err != nil {
		return "cannot read: " + se.Err.Error()
	}
	return "cannot read: " + se.Msg
}

// envFilePerm returns why an env file of status st may not be read for an
// app running as uid, or "".
func envFilePerm(st *unix.Stat_t, uid int) string {
	if perm := st.Mode & 0o7777; perm&0o022 != 0 {
		return fmt.Sprintf("env file is writable by its group or others (mode %04o): refused; chmod go-w it", perm&0o777)
	}
	if st.Uid != 0 && int(st.Uid) != uid {
		return fmt.Sprintf("env file is owned by uid %d, neither root nor the app's user (uid %d): refused", st.Uid, uid)
	}
	return ""
}
