package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// document is one decoded configuration file.
type document struct {
	path  string
	doc   map[string]any
	keys  []toml.Key // in the order the file mentions them
	lines *keyIndex
}

// decode parses src, the contents of the file at path, as TOML. Its only
// problem is an *Error naming path and, where known, the line: a
// supervisord file, nesting deeper than maxNesting, or a syntax error.
func decode(path, src string) (*document, *Error) {
	if ini := supervisordINI(path, src); ini != nil {
		return nil, ini
	}
	lines, lerr := keyLines(path, src) // before toml.Decode: it refuses deep nesting in linear time
	if lerr != nil {
		return nil, lerr
	}
	var doc map[string]any
	md, err := toml.Decode(src, &doc)
	if err != nil {
		e := &Error{File: path, Msg: err.Error(), Err: err}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// toml's line lags behind at the end of the input (line 0 for
			// ` "\` on line 1); the line of the offending token's start
			// (a byte offset, sometimes -1) never does.
			start := min(max(pe.Position.Start, 0), len(src))
			e.Line = max(pe.Position.Line, 1+strings.Count(src[:start], "\n"))
			e.Msg = "syntax error: " + pe.Message
		}
		return nil, e
	}
	return &document{path: path, doc: doc, keys: md.Keys(), lines: lines}, nil
}

// includedTables are the top-level tables an included file may hold.
var includedTables = []string{"app", "group"}

// include reads the files that [supervisor] include names (globs relative
// to the main file's directory, each one's matches in sorted order, the
// main file itself skipped) and merges their [app.NAME] and [group.NAME]
// tables into main, their key positions into p.lines and their files into
// p.files. It returns main's keys followed by each included file's, the
// order apps are defined in. Problems go to p.errs: a pattern or file
// that cannot be read, a syntax error, any other key, a name defined twice.
func (p *parser) include(main *document) []toml.Key {
	keys := main.keys
	sup, ok := main.doc["supervisor"].(map[string]any)
	if !ok {
		return keys
	}
	t := p.table([]string{"supervisor"}, sup)
	var patterns []string
	if !t.strList("include", &patterns) {
		return keys
	}
	for i, pat := range patterns {
		files, err := p.glob(pat)
		if err != nil {
			p.elemErrf(t.key("include"), i, "%v", err)
			continue
		}
		for _, f := range files {
			if slices.Contains(p.files, f) {
				continue // the main file, or matched by an earlier pattern
			}
			if d := p.readIncluded(f); d != nil {
				p.mergeIncluded(main, d)
				keys = append(keys, d.keys...)
			}
		}
	}
	return keys
}

// glob returns the regular files matching pat, relative to the main file's
// directory, sorted. No match is no error: conf.d may be empty.
func (p *parser) glob(pat string) ([]string, error) {
	if pat == "" {
		return nil, errors.New("empty pattern")
	}
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(p.dirs[0], pat)
	}
	matches, err := filepath.Glob(pat)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", pat, err)
	}
	slices.Sort(matches)
	var files []string
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m, err)
		}
		if fi.Mode().IsRegular() {
			files = append(files, filepath.Clean(m))
		}
	}
	return files, nil
}

// readIncluded reads and decodes the included file f and checks that it
// holds only app and group tables; on a problem it reports it and returns
// nil.
func (p *parser) readIncluded(f string) *document {
	data, err := os.ReadFile(f)
	if err != nil {
		p.errs.add(&Error{File: f, Msg: "cannot read included file: " + pathErr(err).Error(), Err: err})
		return nil
	}
	d, derr := decode(f, string(data))
	if derr != nil {
		p.errs.add(derr)
		return nil
	}
	good := true
	for _, k := range slices.Sorted(maps.Keys(d.doc)) {
		_, isTable := d.doc[k].(map[string]any)
		if slices.Contains(includedTables, k) && isTable {
			continue
		}
		msg := "not allowed in an included file: it holds only [app.NAME] and [group.NAME] tables"
		if k == "supervisor" {
			msg = fmt.Sprintf("not allowed in an included file: [supervisor] keys belong in %s", p.files[0])
		}
		p.errs.add(&Error{File: f, Line: d.lines.line([]string{k}), Key: k, Msg: msg})
		good = false
	}
	if !good {
		return nil
	}
	return d
}

// mergeIncluded adds d's app and group tables to main, as the file index
// it is given next; a name main already defines is reported at d's line,
// naming where main defines it, and left out.
func (p *parser) mergeIncluded(main, d *document) {
	file := len(p.files)
	p.files = append(p.files, d.path)
	p.dirs = append(p.dirs, filepath.Dir(p.files[file]))
	for _, kind := range includedTables {
		src, _ := d.doc[kind].(map[string]any)
		if len(src) == 0 {
			continue
		}
		dst, ok := main.doc[kind].(map[string]any)
		if !ok {
			if _, present := main.doc[kind]; present {
				continue // main's own value is reported as the wrong type
			}
			dst = map[string]any{}
			main.doc[kind] = dst
		}
		for _, name := range slices.Sorted(maps.Keys(src)) {
			key := []string{kind, name}
			if _, dup := dst[name]; dup {
				f, l := p.pos(key)
				p.errs.add(&Error{File: p.files[file], Line: d.lines.line(key), Key: keyString(key),
					Msg: fmt.Sprintf("defined again: first defined at %s:%d", f, l)})
				delete(src, name)
				continue
			}
			dst[name] = src[name]
		}
	}
	p.lines.merge(d.lines, file)
}
