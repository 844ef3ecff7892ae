package proc

import (
	"os"
	"slices"
	"testing"
)

// A lazy tree (NewTree) answers PIDs with every process, as Scan does.
func TestPIDsReadsEveryProcess(t *testing.T) {
	tree, err := NewTree("")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tree.Stat(os.Getpid()); !ok {
		t.Fatal("Stat of the test process: gone")
	}
	pids := tree.PIDs()
	if !slices.Contains(pids, 1) || !slices.Contains(pids, os.Getpid()) || !slices.IsSorted(pids) {
		t.Errorf("PIDs of a lazy tree: %d processes, has 1: %v, has self: %v, sorted: %v",
			len(pids), slices.Contains(pids, 1), slices.Contains(pids, os.Getpid()), slices.IsSorted(pids))
	}
}
