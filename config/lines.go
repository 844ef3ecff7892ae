package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxNesting is how many levels of tables, inline tables and arrays a
// configuration may nest: every key component counts one level, and so does
// every array a value sits in. The deepest key the supervisor reads
// (app.NAME.env.VAR) uses four.
const maxNesting = 32

// errTooDeep is the Err of the *Error keyLines returns for a document that
// nests deeper than maxNesting.
var errTooDeep = errors.New("nested too deep")

// keyLines returns, for a TOML document, the 1-based line on which each key
// is first mentioned. A table gets the line of its header, or of the first
// dotted key or sub-table header that creates it implicitly. Keys inside
// inline tables get the line they are written on.
//
// It runs in time and memory linear in len(src): every key component is
// stored once, as a child of its parent, and nesting is cut off at
// maxNesting. A document nested deeper is refused with an *Error naming
// file, the line and the key (its first maxNesting+1 components) that goes
// too deep, wrapping errTooDeep; that is the only error.
//
// The toml package keeps key positions private, so this is a small scanner
// of its own. It is meant for input toml accepts, but runs before
// toml.Decode, whose allocations grow with the square of the nesting (1.1 GB
// for 3,000 levels), so that deep nesting is refused first. On input it does
// not understand it skips a byte and carries on, which can only make a line
// missing or approximate.
func keyLines(file, src string) (*keyIndex, *Error) {
	// About one key per "=", but never more room than one key per 32
	// bytes: a file of "=" signs in a string allocates no more than that.
	hint := min(strings.Count(src, "="), len(src)/32)
	s := &lineScanner{src: src, line: 1, file: file, keys: newKeyIndex(hint)}
	s.document()
	if s.err != nil {
		return nil, s.err
	}
	return s.keys, nil
}

// keyIndex holds every key of a document as a tree of key components, each
// with the line it was first mentioned on. Node 0 is the root (no key).
type keyIndex struct {
	ids   map[keyEdge]int
	nodes []keyNode
}

type keyEdge struct {
	parent int
	part   string
}

type keyNode struct {
	parent int
	part   string
	line   int
	// file is the index of the file the key was first mentioned in, in the
	// parser's files (0, the main file, for a single document).
	file int
}

// newKeyIndex returns an empty index with room for about n keys.
func newKeyIndex(n int) *keyIndex {
	nodes := make([]keyNode, 1, n+1)
	return &keyIndex{ids: make(map[keyEdge]int, n), nodes: nodes}
}

// line returns the line of key, or of its nearest ancestor that has one,
// or 0 when not even key[0] was seen.
func (x *keyIndex) line(key []string) int {
	_, line := x.pos(key)
	return line
}

// pos returns the file index and line of key, or of its nearest ancestor
// that has one; (0, 0) when not even key[0] was seen.
func (x *keyIndex) pos(key []string) (file, line int) {
	id := 0
	for _, part := range key {
		next, ok := x.ids[keyEdge{id, part}]
		if !ok {
			break
		}
		id, file, line = next, x.nodes[next].file, x.nodes[next].line
	}
	return file, line
}

// merge adds every key of y not in x, tagged as written in file index
// file. A key both hold keeps x's position. y's nodes are in creation
// order, so each parent is mapped before its children.
func (x *keyIndex) merge(y *keyIndex, file int) {
	ids := make([]int, len(y.nodes)) // y's node -> x's node; ids[0] = 0, the roots
	for n := 1; n < len(y.nodes); n++ {
		yn := y.nodes[n]
		e := keyEdge{ids[yn.parent], yn.part}
		id, ok := x.ids[e]
		if !ok {
			id = len(x.nodes)
			x.nodes = append(x.nodes, keyNode{parent: e.parent, part: yn.part, line: yn.line, file: file})
			x.ids[e] = id
		}
		ids[n] = id
	}
}

// path returns the key components from the root to node id.
func (x *keyIndex) path(id int) []string {
	var key []string
	for ; id != 0; id = x.nodes[id].parent {
		key = append(key, x.nodes[id].part)
	}
	for i, j := 0, len(key)-1; i < j; i, j = i+1, j-1 {
		key[i], key[j] = key[j], key[i]
	}
	return key
}

type lineScanner struct {
	src  string
	i    int
	line int
	file string
	keys *keyIndex
	err  *Error // set once, by tooDeep; ends the scan
}

// eof reports whether the scan is over: at the end of src, or refused.
func (s *lineScanner) eof() bool { return s.err != nil || s.i >= len(s.src) }

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

// record notes the current line for the key base.parts and for each of its
// prefixes not seen before, and returns the node of the whole key. level is
// the nesting of base's value, so parts[n] sits at level+n+1; a component
// beyond maxNesting ends the scan with an error, and record returns base.
func (s *lineScanner) record(base int, parts []string, level int) int {
	id := base
	for n, part := range parts {
		if level+n+1 > maxNesting {
			s.tooDeep(id, parts[n:])
			return base
		}
		e := keyEdge{id, part}
		next, ok := s.keys.ids[e]
		if !ok {
			next = len(s.keys.nodes)
			s.keys.nodes = append(s.keys.nodes, keyNode{parent: id, part: part, line: s.line})
			s.keys.ids[e] = next
		}
		id = next
	}
	return id
}

// tooDeep ends the scan with an error naming node id followed by rest, cut
// to maxNesting+1 components.
func (s *lineScanner) tooDeep(id int, rest []string) {
	key := append(s.keys.path(id), rest...)
	key = key[:min(len(key), maxNesting+1)]
	s.err = &Error{File: s.file, Line: s.line, Key: toml.Key(key).String(), Err: errTooDeep,
		Msg: fmt.Sprintf("nested more than %d levels deep (each key component and each array counts one level)", maxNesting)}
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
	table, level := 0, 0 // the current [table] and its number of components
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			s.i++
			if s.peek() == '[' { // [[array of tables]]
				s.i++
			}
			s.skipSpace()
			parts := s.key()
			table, level = s.record(0, parts, 0), len(parts)
			s.skipSpace()
			for s.peek() == ']' {
				s.i++
			}
		} else {
			s.keyValue(table, level)
		}
		if s.i == start {
			s.advance() // not understood: make progress
		}
	}
}

// keyValue reads one "key = value" under the table node base, whose own
// value nests level deep.
func (s *lineScanner) keyValue(base, level int) {
	k := s.key()
	s.skipSpace()
	if s.peek() != '=' {
		return
	}
	s.i++
	s.skipSpace()
	id := s.record(base, k, level)
	s.value(id, level+len(k))
}

// join returns a followed by b, in a new slice.
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

// value skips one value of the key node id, nested level deep, recording
// the keys of inline tables under id (as toml does, also for inline tables
// inside arrays).
func (s *lineScanner) value(id, level int) {
	if s.eof() {
		return
	}
	switch {
	case strings.HasPrefix(s.src[s.i:], `"""`), strings.HasPrefix(s.src[s.i:], `'''`):
		s.multiLineString()
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
		if level+1 > maxNesting {
			s.tooDeep(id, nil)
			return
		}
		s.i++
		s.items(']', func() { s.value(id, level+1) })
	case s.peek() == '{':
		s.i++
		s.items('}', func() { s.keyValue(id, level) })
	default:
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
			s.i++
		}
	}
}

// items reads comma-separated items with item up to the closing byte end.
func (s *lineScanner) items(end byte, item func()) {
	for !s.eof() {
		s.skipBlank()
		if s.peek() == end {
			s.i++
			return
		}
		start := s.i
		item()
		s.skipBlank()
		if s.peek() == ',' {
			s.i++
		}
		if s.i == start {
			s.advance()
		}
	}
}

// multiLineString skips a """ or ”' string.
func (s *lineScanner) multiLineString() {
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
}
