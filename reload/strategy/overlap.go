package strategy

// Overlap runs a process app's new generation beside the old one until it
// passes its checks, then stops the old one (swap, for a process).
const Overlap Strategy = "overlap"

var overlap = Info{
	Name:    Overlap,
	Summary: "start a process app's new generation beside the old one, gate it, then stop the old one",
	Kinds:   []string{"process"},
	Hint:    `a gunicorn app overlaps generations with "swap"`,
}
