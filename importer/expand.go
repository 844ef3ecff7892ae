package importer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// instanceMark stands for %(process_num)d in an app with instances: the
// TOML's {instance}.
const instanceMark = "{instance}"

// expansion is what %(NAME)s may stand for in one program's values.
type expansion struct {
	vars map[string]string
	// env looks up %(ENV_X)s; used records that it was.
	env  func(string) (string, bool)
	used map[string]bool
}

// pyFormat matches Python's %-formatting with a name at the start of a
// string: %(NAME)FLAGS WIDTH TYPE.
var pyFormat = regexp.MustCompile(`^%\(([^)]*)\)([#0 +-]*)(\d*)(?:\.\d+)?([diouxXeEfFgGcrs])`)

// expand replaces every %(NAME)X in v and %% by %. It returns the names
// it could not expand (kept as written).
func (e *expansion) expand(v string) (string, []string) {
	var unknown []string
	var b strings.Builder
	for len(v) > 0 {
		i := strings.IndexByte(v, '%')
		if i < 0 {
			b.WriteString(v)
			break
		}
		b.WriteString(v[:i])
		v = v[i:]
		if strings.HasPrefix(v, "%%") {
			b.WriteByte('%')
			v = v[2:]
			continue
		}
		m := pyFormat.FindStringSubmatchIndex(v)
		if m == nil {
			b.WriteByte('%')
			v = v[1:]
			continue
		}
		name, flags, width, verb := v[m[2]:m[3]], v[m[4]:m[5]], v[m[6]:m[7]], v[m[8]:m[9]]
		val, ok := e.lookup(name)
		if !ok {
			unknown = append(unknown, name)
			b.WriteString(v[:m[1]])
		} else {
			b.WriteString(format(val, flags, width, verb))
		}
		v = v[m[1]:]
	}
	return b.String(), unknown
}

// lookup returns the value of %(name)s: ENV_X from the environment
// (recorded in used), any other name from vars.
func (e *expansion) lookup(name string) (string, bool) {
	if x, ok := strings.CutPrefix(name, "ENV_"); ok && e.env != nil {
		val, found := e.env(x)
		if found {
			e.used[x] = true
		}
		return val, found
	}
	val, ok := e.vars[name]
	return val, ok
}

// format applies a %-format's flags and width to val; {instance} is kept
// as it is (its width cannot be expressed in the TOML).
func format(val, flags, width, verb string) string {
	if val == instanceMark {
		return val
	}
	if strings.ContainsAny(verb, "diu") {
		if n, err := strconv.Atoi(val); err == nil {
			return fmt.Sprintf("%"+flags+width+"d", n)
		}
	}
	return fmt.Sprintf("%"+strings.ReplaceAll(flags, "0", "")+width+"s", val)
}

// splitCommand splits a command line as Python's shlex.split does in POSIX
// mode: whitespace separates words, single quotes keep everything, double
// quotes keep everything but backslash escapes of \ " $ `, and a backslash
// outside quotes escapes the next character.
func splitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j, err := doubleQuoted(s[i+1:], &cur)
			if err != nil {
				return nil, err
			}
			i += j + 1
			inWord = true
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			i++
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// doubleQuoted copies the inside of a double-quoted string starting at s
// to b and returns the index of its closing quote.
func doubleQuoted(s string, b *strings.Builder) (int, error) {
	for j := 0; j < len(s); j++ {
		switch {
		case s[j] == '"':
			return j, nil
		case s[j] == '\\' && j+1 < len(s) && strings.IndexByte("\\\"$`", s[j+1]) >= 0:
			b.WriteByte(s[j+1])
			j++
		default:
			b.WriteByte(s[j])
		}
	}
	return 0, fmt.Errorf("unclosed double quote")
}

// splitEnvironment parses supervisord's environment=KEY="val",KEY2=val2
// (quotes optional; commas inside quotes belong to the value).
func splitEnvironment(s string) ([][2]string, error) {
	var out [][2]string
	rest := strings.TrimSpace(s)
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("want KEY=VALUE at %q", rest)
		}
		key := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t\n")
		var val strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != ','; i++ {
			switch c := rest[i]; c {
			case '"', '\'':
				j := strings.IndexByte(rest[i+1:], c)
				if j < 0 {
					return nil, fmt.Errorf("%s: unclosed quote", key)
				}
				val.WriteString(rest[i+1 : i+1+j])
				i += j + 1
			default:
				val.WriteByte(c)
			}
		}
		out = append(out, [2]string{key, strings.TrimSpace(val.String())})
		rest = strings.TrimLeft(strings.TrimPrefix(rest[i:], ","), " \t\n")
	}
	return out, nil
}
