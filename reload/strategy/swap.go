package strategy

// Swap starts a complete new generation on the held sockets, checks it,
// then drains the old one.
const Swap Strategy = "swap"

var swap = Info{
	Name:       Swap,
	Summary:    "start a new generation beside the serving one, gate it, switch, then drain the old one",
	Kinds:      []string{"gunicorn", "process"},
	DefaultFor: []string{"gunicorn"},
	Instead:    map[string]Strategy{"process": Overlap},
}
