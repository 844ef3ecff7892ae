package importer

import (
	"fmt"
	"slices"
	"strings"
)

// entry is one line of an app's table: key = value, or a comment alone
// (key ""). note is a comment written above the line.
type entry struct {
	key, value string
	note       []string
}

// table is one [app.NAME] or [group.NAME] of the output.
type table struct {
	header string
	// intro are comments written above the header.
	intro   []string
	entries []entry
}

func (t *table) set(key, value string, note ...string) {
	t.entries = append(t.entries, entry{key: key, value: value, note: note})
}

func (t *table) comment(lines ...string) {
	t.entries = append(t.entries, entry{note: lines})
}

// write appends the table to b.
func (t *table) write(b *strings.Builder) {
	b.WriteByte('\n')
	for _, c := range t.intro {
		writeComment(b, c)
	}
	fmt.Fprintf(b, "[%s]\n", t.header)
	for _, e := range t.entries {
		for _, n := range e.note {
			writeComment(b, n)
		}
		if e.key != "" {
			fmt.Fprintf(b, "%s = %s\n", e.key, e.value)
		}
	}
}

// writeComment writes text as comment lines (one per line of text), with
// control characters, which a TOML comment may not hold, as \xNN.
func writeComment(b *strings.Builder, text string) {
	for _, l := range strings.Split(text, "\n") {
		b.WriteString(strings.TrimRight("# "+visibleControls(l), " \t"))
		b.WriteByte('\n')
	}
}

// visibleControls writes each control character of s as \xNN.
func visibleControls(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			fmt.Fprintf(&b, `\x%02x`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quote returns s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteList returns ss as a TOML array of strings.
func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// quoteMap returns m as a TOML inline table, keys sorted.
func quoteMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = bareOrQuoted(k) + " = " + quote(m[k])
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// bareOrQuoted returns k as a TOML bare key when it is one, else quoted.
func bareOrQuoted(k string) string {
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return quote(k)
		}
	}
	if k == "" {
		return `""`
	}
	return k
}
