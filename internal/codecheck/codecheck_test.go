// Package codecheck holds repository-wide checks of the project's own rules
// that no linter here enforces: short functions, comments that state
// contracts rather than history, and supctl linking none of the
// supervisor's packages.
package codecheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// maxLines is the longest a non-test function may be, counted from its
// func line to its closing brace.
const maxLines = 80

// historyPhrases mark comments that tell how code came to be instead of
// what it guarantees; that belongs in commit messages.
var historyPhrases = regexp.MustCompile(`(?i)(\(found by|\bfound by (tests?\b|[a-z0-9_]+/|the [a-z0-9 ]*tests?\b)|\badded by\b|\bchanged by\b|\bused to (report|be|return|say)\b|\be2e tests?:|\bwas fixed\b|\bpreviously\b)`)

// sources returns every non-test Go file of the module, relative to its root.
func sources(t *testing.T) (root string, files []string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatalf("module root: %v", err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin" || name == "dist") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return root, files
}

func TestFunctionLength(t *testing.T) {
	root, files := sources(t)
	fset := token.NewFileSet()
	for _, path := range files {
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
			if n := end - start + 1; n > maxLines {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d: func %s is %d lines (limit %d)", rel, start, fn.Name.Name, n, maxLines)
			}
		}
	}
}

func TestNoHistoryComments(t *testing.T) {
	root, files := sources(t)
	fset := token.NewFileSet()
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if m := historyPhrases.FindString(c.Text); m != "" {
					rel, _ := filepath.Rel(root, path)
					t.Errorf("%s:%d: comment tells history (%q): %s", rel, fset.Position(c.Pos()).Line, m, strings.TrimSpace(c.Text))
				}
			}
		}
	}
}
