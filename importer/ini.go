package importer

import (
	"fmt"
	"strings"
)

// section is one [NAME] of a supervisord file, its keys in file order.
type section struct {
	name string
	file string
	line int
	keys []option
	// index maps a key to its last position in keys.
	index map[string]int
}

// option is one key = value line (with its continuation lines).
type option struct {
	key, value string
	line       int
}

// get returns the value of key and whether it is set.
func (s *section) get(key string) (option, bool) {
	i, ok := s.index[key]
	if !ok {
		return option{}, false
	}
	return s.keys[i], true
}

// parseINI reads text as Python's ConfigParser does for supervisord: `;`
// and `#` comment lines, a `;` after whitespace ends a value, `key = value`
// or `key: value` with keys lowercased, and indented lines continuing the
// previous value. It returns the sections in file order, or an error
// naming file and line for a key outside a section or a line that is
// neither. A key given twice keeps its last value, with a warning.
func parseINI(file, text string, warn func(string, int, string)) ([]*section, error) {
	var out []*section
	var cur *section
	last := -1 // index in cur.keys of the value continuation lines extend
	for i, raw := range strings.Split(text, "\n") {
		n := i + 1
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == ';' || trimmed[0] == '#':
			if trimmed == "" {
				last = -1
			}
			continue
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil || last < 0 {
				return nil, fmt.Errorf("%s:%d: indented line continues no value", file, n)
			}
			v := stripInlineComment(trimmed)
			cur.keys[last].value = strings.TrimSpace(cur.keys[last].value + "\n" + v)
			continue
		case trimmed[0] == '[':
			end := strings.IndexByte(trimmed, ']')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: section header %q has no ']'", file, n, trimmed)
			}
			cur = &section{name: strings.TrimSpace(trimmed[1:end]), file: file, line: n, index: map[string]int{}}
			out = append(out, cur)
			last = -1
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %q is outside any [section]", file, n, trimmed)
		}
		k := strings.IndexAny(trimmed, "=:")
		if k <= 0 {
			return nil, fmt.Errorf("%s:%d: want key = value, got %q", file, n, trimmed)
		}
		key := strings.ToLower(strings.TrimSpace(trimmed[:k]))
		if prev, ok := cur.get(key); ok {
			warn(file, n, fmt.Sprintf("[%s] %s: set again (line %d); the last value counts", cur.name, key, prev.line))
		}
		cur.keys = append(cur.keys, option{key: key, value: stripInlineComment(strings.TrimSpace(trimmed[k+1:])), line: n})
		last = len(cur.keys) - 1
		cur.index[key] = last
	}
	return out, nil
}

// stripInlineComment cuts a value at a `;` that follows whitespace.
func stripInlineComment(v string) string {
	for i := 1; i < len(v); i++ {
		if v[i] == ';' && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimSpace(v[:i])
		}
	}
	return v
}
