// Package walk retraces a code path the way a reader follows it: from one
// function of a module, into each function it calls in the same module, in
// source order, to a fixed depth, and back. It counts the files the reader
// enters, the moves between folders (packages) and, of those, the moves back
// up to a higher layer (into a package that imports the one left). These are
// the figures the project uses to say whether a path through the code got
// shorter.
//
// Contract: calls are resolved statically with go/types (package functions,
// methods of concrete types, calls inside function literals of the body);
// calls through an interface or a function value are not followed, nor are
// calls outside the module. Only success paths are walked: the body of an
// `if` whose condition compares an error with nil is skipped. A function is
// read once (its first, shallowest encounter); each later call to it still
// counts its move there and back.
package walk

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Result is one walk: Files lists the files entered (relative to the module
// root, in the order first entered), Moves counts changes of folder along
// the walk, BackUp those of them into a package that imports the one left,
// and Trail the sequence of files, one entry per change of file.
type Result struct {
	Entry  string
	Depth  int
	Files  []string
	Moves  int
	BackUp int
	Trail  []string
}

// listed is the part of `go list -json` the walk reads.
type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Export     string
	Deps       []string
	Module     *struct{ Main bool }
}

// Module is a loaded module: its packages as `go list -export -deps` lists
// them, and the packages of the main module type-checked from source on
// demand.
type Module struct {
	Root    string
	Path    string
	fset    *token.FileSet
	pkgs    map[string]*listed
	checked map[string]*checked
}

// checked is one main-module package type-checked from source.
type checked struct {
	path  string
	info  *types.Info
	decls map[string]*ast.FuncDecl // by types.Func.FullName
}

// Load lists the module rooted at root (it runs `go list -e -export -deps
// -json ./...` there, which builds export data for every dependency). It
// fails when go list fails or its output cannot be decoded.
func Load(root string) (*Module, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("walk: module root %s: %w", root, err)
	}
	cmd := exec.Command("go", "list", "-e", "-export", "-deps", "-json", "./...")
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("walk: go list in %s: %w", root, err)
	}
	m := &Module{Root: root, fset: token.NewFileSet(), pkgs: map[string]*listed{}, checked: map[string]*checked{}}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listed
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("walk: decode go list output of %s: %w", root, err)
		}
		m.pkgs[p.ImportPath] = &p
		if p.Module != nil && p.Module.Main && (m.Path == "" || len(p.ImportPath) < len(m.Path)) && p.Dir == root {
			m.Path = p.ImportPath
		}
	}
	if m.Path == "" {
		m.Path = modulePath(m.pkgs, root)
	}
	return m, nil
}

// modulePath is the import path of the module rooted at root, derived from
// any of its packages' import path and directory.
func modulePath(pkgs map[string]*listed, root string) string {
	for path, p := range pkgs {
		if p.Module == nil || !p.Module.Main {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			continue
		}
		return strings.TrimSuffix(path, "/"+filepath.ToSlash(rel))
	}
	return ""
}

// check type-checks the main-module package path from source, its imports
// from export data; type errors are tolerated (the walk needs the calls it
// can resolve, not a clean build).
func (m *Module) check(path string) (*checked, error) {
	if c, ok := m.checked[path]; ok {
		return c, nil
	}
	p := m.pkgs[path]
	if p == nil {
		return nil, fmt.Errorf("walk: package %s is not listed", path)
	}
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(m.fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("walk: parse %s: %w", name, err)
		}
		files = append(files, f)
	}
	imp := importer.ForCompiler(m.fset, "gc", func(ip string) (io.ReadCloser, error) {
		if q := m.pkgs[ip]; q != nil && q.Export != "" {
			return os.Open(q.Export)
		}
		return nil, fmt.Errorf("walk: no export data for %s", ip)
	})
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}, Types: map[ast.Expr]types.TypeAndValue{}}
	conf := types.Config{Importer: imp, Error: func(error) {}}
	_, _ = conf.Check(path, m.fset, files, info) // errors tolerated, see above
	c := &checked{path: path, info: info, decls: map[string]*ast.FuncDecl{}}
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				if fn, ok := info.Defs[fd.Name].(*types.Func); ok {
					c.decls[fn.FullName()] = fd
				}
			}
		}
	}
	m.checked[path] = c
	return c, nil
}

// mainPkg reports whether path is a package of the main module.
func (m *Module) mainPkg(path string) bool {
	p := m.pkgs[path]
	return p != nil && p.Module != nil && p.Module.Main
}

// imports reports whether package a imports b, directly or not.
func (m *Module) imports(a, b string) bool {
	p := m.pkgs[a]
	if p == nil {
		return false
	}
	for _, d := range p.Deps {
		if d == b {
			return true
		}
	}
	return false
}

// rel is file relative to the module root.
func (m *Module) rel(file string) string {
	if r, err := filepath.Rel(m.Root, file); err == nil {
		return filepath.ToSlash(r)
	}
	return file
}
