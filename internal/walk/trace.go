package walk

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path"
	"strings"
)

// fnRef is one function of the main module: its package, its declaration
// and the name types gives it.
type fnRef struct {
	pkg  *checked
	decl *ast.FuncDecl
	name string
}

// walker holds one walk in progress.
type walker struct {
	m     *Module
	depth int
	read  map[string]int // function → level it was read at
	seen  map[string]bool
	res   *Result
	at    string // file the reader is in
}

// Walk follows entry to depth levels of calls (entry itself is level 0, so
// depth 3 reads the entry, its callees and theirs, and enters but does not
// read the level-3 callees). entry is "pkg.Func" or "pkg.Type.Method", pkg
// the package's directory relative to the module root ("supervise",
// "listen/steer"). It fails when entry names no function of the module.
func (m *Module) Walk(entry string, depth int) (*Result, error) {
	ref, err := m.lookup(entry)
	if err != nil {
		return nil, err
	}
	w := &walker{m: m, depth: depth, read: map[string]int{}, seen: map[string]bool{}, res: &Result{Entry: entry, Depth: depth}}
	w.move(m.fset.Position(ref.decl.Pos()).Filename, ref.pkg.path)
	w.readFn(ref, 0)
	return w.res, nil
}

// lookup finds the function entry names.
func (m *Module) lookup(entry string) (fnRef, error) {
	i := strings.LastIndex(entry, "/")
	j := strings.Index(entry[i+1:], ".")
	if j < 0 {
		return fnRef{}, fmt.Errorf("walk: entry %q is not pkg.Func or pkg.Type.Method", entry)
	}
	pkgPath := path.Join(m.Path, entry[:i+1+j])
	name := entry[i+2+j:]
	c, err := m.check(pkgPath)
	if err != nil {
		return fnRef{}, err
	}
	want := []string{pkgPath + "." + name}
	if typ, meth, ok := strings.Cut(name, "."); ok {
		want = []string{"(*" + pkgPath + "." + typ + ")." + meth, "(" + pkgPath + "." + typ + ")." + meth}
	}
	for _, w := range want {
		if d := c.decls[w]; d != nil {
			return fnRef{pkg: c, decl: d, name: w}, nil
		}
	}
	return fnRef{}, fmt.Errorf("walk: no function %s in %s", name, pkgPath)
}

// move puts the reader in file of package pkg, counting a change of file in
// the trail and a change of folder as a move (back up when pkg imports the
// package left).
func (w *walker) move(file, pkg string) {
	file = w.m.rel(file)
	if file == w.at {
		return
	}
	if w.at != "" && path.Dir(file) != path.Dir(w.at) {
		w.res.Moves++
		if w.m.imports(pkg, w.pkgOf(w.at)) {
			w.res.BackUp++
		}
	}
	if !w.seen[file] {
		w.seen[file] = true
		w.res.Files = append(w.res.Files, file)
	}
	w.res.Trail = append(w.res.Trail, file)
	w.at = file
}

// pkgOf is the import path of the package of file (relative to the root).
func (w *walker) pkgOf(file string) string {
	dir := path.Dir(file)
	if dir == "." {
		return w.m.Path
	}
	return w.m.Path + "/" + dir
}

// readFn reads fn's body at level: each call into the module, in source
// order, is entered and, below the depth, read; then the reader comes back.
func (w *walker) readFn(fn fnRef, level int) {
	w.read[fn.name] = level
	here := w.m.fset.Position(fn.decl.Pos()).Filename
	for _, callee := range w.calls(fn) {
		w.move(callee.file, callee.pkg)
		if ref, ok := w.ref(callee); ok && level+1 < w.depth {
			if lv, done := w.read[ref.name]; !done || lv > level+1 {
				w.readFn(ref, level+1)
			}
		}
		w.move(here, fn.pkg.path)
	}
}

// call is one call site's callee.
type call struct {
	fn   *types.Func
	pkg  string
	file string
}

// ref is the declaration of c's callee.
func (w *walker) ref(c call) (fnRef, bool) {
	p, err := w.m.check(c.pkg)
	if err != nil {
		return fnRef{}, false
	}
	d := p.decls[c.fn.FullName()]
	return fnRef{pkg: p, decl: d, name: c.fn.FullName()}, d != nil
}

// calls lists the calls of fn's body into the main module, in source order,
// outside the bodies of `if err != nil` and alike.
func (w *walker) calls(fn fnRef) []call {
	var out []call
	ast.Inspect(fn.decl.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt:
			if w.errCheck(fn.pkg, n.Cond) {
				walkExcept(n, n.Body, func(x ast.Node) { w.collect(fn.pkg, x, &out) })
				return false
			}
		case *ast.CallExpr:
			w.collect(fn.pkg, n, &out)
		}
		return true
	})
	return out
}

// walkExcept inspects n's children other than skip, handing each node to f
// (the calls found there are collected through f, in source order).
func walkExcept(n *ast.IfStmt, skip ast.Node, f func(ast.Node)) {
	for _, c := range []ast.Node{n.Init, n.Cond, n.Else} {
		if c == nil || c == skip {
			continue
		}
		ast.Inspect(c, func(x ast.Node) bool {
			if call, ok := x.(*ast.CallExpr); ok {
				f(call)
			}
			return true
		})
	}
}

// collect appends n's callee to out when n is a call into the main module
// the types resolve statically (not through an interface).
func (w *walker) collect(p *checked, n ast.Node, out *[]call) {
	ce, ok := n.(*ast.CallExpr)
	if !ok {
		return
	}
	var id *ast.Ident
	switch f := ast.Unparen(ce.Fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	case *ast.IndexExpr:
		if s, ok := f.X.(*ast.SelectorExpr); ok {
			id = s.Sel
		} else if i, ok := f.X.(*ast.Ident); ok {
			id = i
		}
	}
	fn, ok := p.info.Uses[id].(*types.Func)
	if id == nil || !ok || fn.Pkg() == nil || !w.m.mainPkg(fn.Pkg().Path()) {
		return
	}
	fn = fn.Origin()
	if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil && types.IsInterface(sig.Recv().Type()) {
		return
	}
	pos := w.m.fset.Position(fn.Pos())
	if !pos.IsValid() {
		return
	}
	*out = append(*out, call{fn: fn, pkg: fn.Pkg().Path(), file: pos.Filename})
}

// errCheck reports whether cond compares a value of type error with nil
// (`err != nil`, `err == nil` is a success path and not skipped).
func (w *walker) errCheck(p *checked, cond ast.Expr) bool {
	b, ok := ast.Unparen(cond).(*ast.BinaryExpr)
	if !ok {
		return false
	}
	if b.Op == token.LOR || b.Op == token.LAND {
		return w.errCheck(p, b.X) || w.errCheck(p, b.Y)
	}
	if b.Op != token.NEQ {
		return false
	}
	for _, x := range []ast.Expr{b.X, b.Y} {
		if tv, ok := p.info.Types[x]; ok && tv.Type != nil && types.Identical(tv.Type, types.Universe.Lookup("error").Type()) {
			return true
		}
	}
	return false
}
