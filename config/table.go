package config

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gunisup/supervisor/internal/textutil"
)

// parser holds the state of one Parse call: where problems go and where keys
// were written.
type parser struct {
	file  string    // path as given, for messages
	lines *keyIndex // key line numbers, from keyLines, of every file read
	// files are the files read, the main file (as given) first, then the
	// included ones, indexed by keyNode.file; dirs are their absolute
	// directories, the base of relative paths written in each.
	files []string
	dirs  []string
	errs  *Errors
	// steering is [supervisor] steering, every app's default.
	steering Steering
	// passEnv is [supervisor] pass_env, for the size of apps' environments.
	passEnv []string
	// checks holds the file system checks done (see cached).
	checks map[checkKey]error
}

// line returns the line of key, or of its nearest ancestor that has one.
func (p *parser) line(key []string) int { return p.lines.line(key) }

// pos returns the file and line of key, or of its nearest ancestor that has one.
func (p *parser) pos(key []string) (file string, line int) {
	f, l := p.lines.pos(key)
	return p.files[f], l
}

// dirOf returns the directory of the file key is written in: relative
// paths there are relative to it.
func (p *parser) dirOf(key []string) string {
	f, _ := p.lines.pos(key)
	return p.dirs[f]
}

func keyString(key []string) string { return toml.Key(key).String() }

// errf reports a problem with key.
func (p *parser) errf(key []string, format string, args ...any) {
	f, l := p.pos(key)
	p.errs.add(&Error{File: f, Line: l, Key: keyString(key), Msg: fmt.Sprintf(format, args...)})
}

// elemErrf reports a problem with element i of the array at key.
func (p *parser) elemErrf(key []string, i int, format string, args ...any) {
	f, l := p.pos(key)
	p.errs.add(&Error{File: f, Line: l, Key: elemKey(key, i), Msg: fmt.Sprintf(format, args...)})
}

// elemKey names element i of the array at key: app.web.listen[1].
func elemKey(key []string, i int) string { return fmt.Sprintf("%s[%d]", keyString(key), i) }

// table is one decoded TOML table. Each accessor marks its key as known, so
// finish can report every other key as unknown; accessors return true only
// when the key is present and its value valid, after storing it in dst.
type table struct {
	p    *parser
	path []string
	m    map[string]any
	used map[string]bool
}

func (p *parser) table(path []string, m map[string]any) *table {
	return &table{p: p, path: path, m: m, used: make(map[string]bool)}
}

func (t *table) key(name string) []string { return join(t.path, []string{name}) }

func (t *table) errf(name string, format string, args ...any) {
	t.p.errf(t.key(name), format, args...)
}

func (t *table) get(name string) (any, bool) {
	t.used[name] = true
	v, ok := t.m[name]
	return v, ok
}

func (t *table) typeErr(name, want string, v any) {
	t.errf(name, "want %s, got %s", want, typeName(v))
}

// typeName names the TOML type of a value decoded into an interface.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case time.Time:
		return "datetime"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case []map[string]any:
		return "array of tables"
	}
	return fmt.Sprintf("%T", v)
}

func (t *table) str(name string, dst *string) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.typeErr(name, "string", v)
		return false
	}
	*dst = s
	return true
}

// filePath reads a non-empty file path; a relative one is taken relative to the
// configuration file's directory. The result is clean and absolute.
func (t *table) filePath(name string, dst *string) bool {
	var s string
	if !t.str(name, &s) {
		return false
	}
	if s == "" {
		t.errf(name, "must not be empty")
		return false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(t.p.dirOf(t.path), s)
	}
	*dst = filepath.Clean(s)
	return true
}

func (t *table) strList(name string, dst *[]string) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	arr, ok := v.([]any)
	if !ok {
		t.typeErr(name, "array of strings", v)
		return false
	}
	out := make([]string, len(arr))
	good := true
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.p.elemErrf(t.key(name), i, "want string, got %s", typeName(e))
			good = false
			continue
		}
		out[i] = s
	}
	if good {
		*dst = out
	}
	return good
}

// integer reads an integer that must lie in lo..hi: every count has a
// ceiling, so that no value makes the supervisor fork, retry or allocate
// without bound.
func (t *table) integer(name string, dst *int, lo, hi int) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	n, ok := v.(int64)
	if !ok {
		t.typeErr(name, "integer", v)
		return false
	}
	if n < int64(lo) || n > int64(hi) {
		t.errf(name, "must be between %d and %d, got %d", lo, hi, n)
		return false
	}
	*dst = int(n)
	return true
}

// number reads a TOML float or integer between lo and hi.
func (t *table) number(name string, dst *float64, lo, hi float64) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int64:
		f = float64(n)
	default:
		t.typeErr(name, "number", v)
		return false
	}
	if f < lo || f > hi {
		t.errf(name, "must be between %g and %g, got %g", lo, hi, f)
		return false
	}
	*dst = f
	return true
}

func (t *table) boolean(name string, dst *bool) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		t.typeErr(name, "boolean", v)
		return false
	}
	*dst = b
	return true
}

// MinDuration is the shortest duration any key accepts: shorter backoffs,
// health intervals or timeouts only spin the CPU.
const MinDuration = 10 * time.Millisecond

// duration reads a time.ParseDuration string that must be at least
// MinDuration.
func (t *table) duration(name string, dst *time.Duration) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.errf(name, "want a duration string such as \"30s\", got %s", typeName(v))
		return false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.errf(name, "invalid duration %q: %v", s, err)
		return false
	}
	if d < MinDuration {
		t.errf(name, "duration must be at least %v, got %q", MinDuration, s)
		return false
	}
	*dst = d
	return true
}

// strMap reads a table of strings.
func (t *table) strMap(name string, dst *map[string]string) bool {
	v, ok := t.get(name)
	if !ok {
		return false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeErr(name, "table of strings", v)
		return false
	}
	out := make(map[string]string, len(m))
	good := true
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := join(t.key(name), []string{k})
		s, ok := m[k].(string)
		if !ok {
			t.p.errf(key, "want string, got %s", typeName(m[k]))
			good = false
			continue
		}
		out[k] = s
	}
	if good {
		*dst = out
	}
	return good
}

// sub returns the sub-table name, or nil when it is absent or not a table
// (reported).
func (t *table) sub(name string) *table {
	v, ok := t.get(name)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeErr(name, "table", v)
		return nil
	}
	return t.p.table(t.key(name), m)
}

// finish reports every key that no accessor asked for, in file order, with
// a suggestion when a known key is close.
func (t *table) finish() {
	var unknown []string
	for k := range t.m {
		if !t.used[k] {
			unknown = append(unknown, k)
		}
	}
	slices.SortFunc(unknown, func(a, b string) int {
		return cmp.Or(cmp.Compare(t.p.line(t.key(a)), t.p.line(t.key(b))), strings.Compare(a, b))
	})
	for _, k := range unknown {
		if s := t.suggest(k); s != "" {
			t.errf(k, "unknown key (did you mean %q?)", s)
		} else {
			t.errf(k, "unknown key")
		}
	}
}

// suggest returns the known key closest to k, or "" if none is close.
func (t *table) suggest(k string) string {
	best, bestDist := "", 3
	for known := range t.used {
		if _, present := t.m[known]; present && known != k {
			continue // already used in this table: not what was meant
		}
		d := textutil.EditDistance(strings.ToLower(k), strings.ToLower(known))
		if d < bestDist || (d == bestDist && known < best) {
			best, bestDist = known, d
		}
	}
	if bestDist > 2 || bestDist >= len(k) {
		return ""
	}
	return best
}
