// Command walk prints how far a reader travels through the code from one
// function: the files entered and the moves between folders, following the
// calls into the module to a fixed depth (see internal/walk).
//
//	walk [-C DIR] [-depth 3] [-trail] ENTRY...
//	    ENTRY is pkg.Func or pkg.Type.Method, pkg relative to the module
//	    root: walk supervise.Manager.Update supervise.NewManager
//	    -C DIR walks the module rooted at DIR (a worktree of another commit)
//
// Exit status: 0 ok, 1 an entry could not be walked, 2 usage.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/gunisup/supervisor/internal/walk"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run walks each entry of args and prints its figures; it returns the exit
// status.
func run(args []string) int {
	fs := flag.NewFlagSet("walk", flag.ContinueOnError)
	dir := fs.String("C", ".", "root of the module to walk")
	depth := fs.Int("depth", 3, "levels of calls to follow")
	trail := fs.Bool("trail", false, "print the files in the order the walk enters them")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: walk [-C DIR] [-depth 3] [-trail] ENTRY...")
		return 2
	}
	m, err := walk.Load(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, e := range fs.Args() {
		r, err := m.Walk(e, *depth)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%s (depth %d): %d files, %d folder moves, %d back up\n", r.Entry, r.Depth, len(r.Files), r.Moves, r.BackUp)
		fmt.Printf("  files: %s\n", strings.Join(r.Files, " "))
		if *trail {
			fmt.Printf("  trail: %s\n", strings.Join(r.Trail, " → "))
		}
	}
	return 0
}
