package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines returns, for a document that toml has already parsed without
// error, the 1-based line on which each key is first mentioned, indexed by
// toml.Key.String(). A table gets the line of its header, or of the first
// dotted key or sub-table header that creates it implicitly. Keys inside
// inline tables get the line they are written on.
//
// The toml package keeps key positions private, so this is a small scanner
// of its own. It relies on the input being valid TOML and never fails: on
// input it does not understand it skips a byte and carries on, which can
// only make a line missing or approximate, never wrong about validity.
func keyLines(src string) map[string]int {
	s := &lineScanner{src: src, line: 1, lines: make(map[string]int)}
	s.document()
	return s.lines
}

type lineScanner struct {
	src   string
	i     int
	line  int
	lines map[string]int
}

func (s *lineScanner) eof() bool { return s.i >= len(s.src) }

func (s *lineScanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

// advance moves one byte, counting newlines.
func (s *lineScanner) advance() {
	if s.eof() {
		return
	}
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

func (s *lineScanner) record(key []string) {
	for n := 1; n <= len(key); n++ {
		k := toml.Key(key[:n]).String()
		if _, ok := s.lines[k]; !ok {
			s.lines[k] = s.line
		}
	}
}

// skipSpace skips blanks within a line.
func (s *lineScanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.i++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (s *lineScanner) skipBlank() {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			s.advance()
		case c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) document() {
	var table []string
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			s.i++
			array := s.peek() == '['
			if array {
				s.i++
			}
			s.skipSpace()
			table = s.key()
			s.record(table)
			s.skipSpace()
			for s.peek() == ']' {
				s.i++
			}
		} else {
			k := s.key()
			s.skipSpace()
			if s.peek() == '=' {
				s.i++
				s.skipSpace()
				full := join(table, k)
				s.record(full)
				s.value(full)
			}
		}
		if s.i == start {
			s.advance() // not understood: make progress
		}
	}
}

func join(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// key reads a possibly dotted key.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		parts = append(parts, s.simpleKey())
		s.skipSpace()
		if s.peek() != '.' {
			return parts
		}
		s.i++
	}
}

func (s *lineScanner) simpleKey() string {
	switch s.peek() {
	case '"':
		start := s.i
		s.i++
		for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
			if s.peek() == '\\' {
				s.i++
			}
			s.i++
		}
		s.i++
		raw := s.src[start:min(s.i, len(s.src))]
		if u, err := strconv.Unquote(raw); err == nil {
			return u
		}
		return strings.Trim(raw, `"`)
	case '\'':
		s.i++
		start := s.i
		for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
			s.i++
		}
		k := s.src[start:s.i]
		s.i++
		return k
	}
	start := s.i
	for !s.eof() && !strings.ContainsRune(" \t.=]\r\n#", rune(s.peek())) {
		s.i++
	}
	return s.src[start:s.i]
}

// value skips one value, recording the keys of inline tables under key (as
// toml does, also for inline tables inside arrays).
func (s *lineScanner) value(key []string) {
	if s.eof() {
		return
	}
	switch {
	case strings.HasPrefix(s.src[s.i:], `"""`), strings.HasPrefix(s.src[s.i:], `'''`):
		q := s.src[s.i : s.i+3]
		s.i += 3
		for !s.eof() {
			if q[0] == '"' && s.peek() == '\\' {
				s.i++
				s.advance()
				continue
			}
			if strings.HasPrefix(s.src[s.i:], q) {
				s.i += 3
				for n := 0; n < 2 && s.peek() == q[0]; n++ {
					s.i++ // up to two quotes may end the content
				}
				return
			}
			s.advance()
		}
	case s.peek() == '"' || s.peek() == '\'':
		q := s.peek()
		s.i++
		for !s.eof() && s.peek() != q && s.peek() != '\n' {
			if q == '"' && s.peek() == '\\' {
				s.i++
			}
			s.i++
		}
		s.i++
	case s.peek() == '[':
		s.i++
		for !s.eof() {
			s.skipBlank()
			if s.peek() == ']' {
				s.i++
				return
			}
			start := s.i
			s.value(key)
			s.skipBlank()
			if s.peek() == ',' {
				s.i++
			}
			if s.i == start {
				s.advance()
			}
		}
	case s.peek() == '{':
		s.i++
		for !s.eof() {
			s.skipBlank()
			if s.peek() == '}' {
				s.i++
				return
			}
			start := s.i
			k := s.key()
			s.skipSpace()
			if s.peek() == '=' {
				s.i++
				s.skipSpace()
				full := join(key, k)
				s.record(full)
				s.value(full)
			}
			s.skipBlank()
			if s.peek() == ',' {
				s.i++
			}
			if s.i == start {
				s.advance()
			}
		}
	default:
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
			s.i++
		}
	}
}
